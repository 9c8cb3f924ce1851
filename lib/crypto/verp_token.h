// VERP return paths: each message's envelope sender (MAIL FROM) names the message, so that a
// bounce mailed back to it says which message failed, however late it comes and whatever the
// report leaves out. The address is b-<token>@<bounces.domain>:
//   token = base32(id | mac), RFC 4648's alphabet in lower case, no padding
//   id    = the message id, big-endian, its leading zero bytes dropped (id 0: no byte)
//   mac   = the first 10 bytes (80 bits) of HMAC-SHA256(K, "bulkmail-verp\0" | id as 8 bytes)
// The token's length gives the id's: 16 characters for message 0, at most 21 for ids under 2^24
// (16.7 million messages), 29 for the largest. Only [a-z2-7] follow the "b-": nothing a relay
// quotes, rewrites or drops ('+', '=', '/', '.'), and nothing that a server lower-casing the local
// part (some do) can change, since verify() reads any case. The MAC input's prefix keeps these
// MACs apart from every other use of the keys (the unsubscribe tokens derive theirs from other
// labels).
//
// Keys are the unsubscribe key set, rotated the same way: the first key signs, every key
// verifies, so return paths of mail sent before a rotation still verify until their key is
// dropped. MACs are compared in constant time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/hmac.h"

namespace bulkmail {

class VerpCodec {
 public:
  // `keys`: the unsubscribe secret file's lines, newest first; at least one (else
  // std::invalid_argument). Copies share the prepared keys; every member may be called from many
  // threads at once.
  explicit VerpCodec(const std::vector<std::string>& keys);

  // "b-" and the token naming message `id` (a MessageId, store/store.h), signed with the first
  // key. `id` must not be negative (std::invalid_argument).
  std::string local_part(std::int64_t id) const;

  // The message id a local part names, when some key's MAC matches; nullopt for anything else
  // (another prefix, a character outside the alphabet, a length no token has, a non-canonical
  // encoding, a MAC no key made). Any case is accepted. Never throws on any input, and looks at
  // no more than kMaxLocalPartLength characters of it.
  std::optional<std::int64_t> verify(std::string_view local_part) const;

  static constexpr std::string_view kPrefix = "b-";
  static constexpr std::size_t kMacBytes = 10;
  static constexpr std::size_t kMinLocalPartLength = 2 + 16;  // message 0
  static constexpr std::size_t kMaxLocalPartLength = 2 + 29;  // an 8-byte id

 private:
  std::vector<std::shared_ptr<const HmacSha256>> keys_;  // shared: the codec is copied
};

// local_part(id) + "@" + domain: the envelope sender of message `id`. `domain` is bounces.domain,
// already checked (parse_domain).
std::string verp_address(const VerpCodec& codec, std::int64_t id, std::string_view domain);

}  // namespace bulkmail
