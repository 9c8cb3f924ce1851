// The life of a queued message. queued -> sending -> sent | deferred | failed | suppressed;
// deferred -> sending again when due; queued/deferred -> cancelled by an operator; sent ->
// bounced (a report by mail said the address is dead) | complained (the recipient reported it as
// spam), once the relay accepted it and a report came back later.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace bulkmail {

enum class MessageState {
  queued,
  sending,
  deferred,
  sent,
  bounced,
  complained,
  failed,
  suppressed,
  cancelled
};

inline constexpr std::array<MessageState, 9> kAllMessageStates = {
    MessageState::queued, MessageState::sending,    MessageState::deferred,
    MessageState::sent,   MessageState::bounced,    MessageState::complained,
    MessageState::failed, MessageState::suppressed, MessageState::cancelled};

std::string_view to_string(MessageState s);
std::optional<MessageState> parse_message_state(std::string_view s);

// Sent, bounced, complained, failed, suppressed or cancelled: no delivery of the message is waiting
// or under way (only an operator's `retry` queues a failed one again). What retention may delete.
bool is_finished(MessageState s);

}  // namespace bulkmail
