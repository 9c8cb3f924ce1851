#include "store/message_state.h"

namespace bulkmail {

std::string_view to_string(MessageState s) {
  switch (s) {
    case MessageState::queued:
      return "queued";
    case MessageState::sending:
      return "sending";
    case MessageState::deferred:
      return "deferred";
    case MessageState::sent:
      return "sent";
    case MessageState::bounced:
      return "bounced";
    case MessageState::complained:
      return "complained";
    case MessageState::failed:
      return "failed";
    case MessageState::suppressed:
      return "suppressed";
    case MessageState::cancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<MessageState> parse_message_state(std::string_view s) {
  for (MessageState m : kAllMessageStates) {
    if (to_string(m) == s) return m;
  }
  return std::nullopt;
}

bool is_finished(MessageState s) {
  switch (s) {
    case MessageState::queued:
    case MessageState::sending:
    case MessageState::deferred:
      return false;
    case MessageState::sent:
    case MessageState::bounced:
    case MessageState::complained:
    case MessageState::failed:
    case MessageState::suppressed:
    case MessageState::cancelled:
      return true;
  }
  return false;
}

}  // namespace bulkmail
