// Unsubscribe tokens: the opaque, URL-safe part of every opt-out link. A token carries the
// recipient, the category and when it was issued, encrypted so that nobody who sees the link
// learns the address, and authenticated with HMAC-SHA256 so that nobody can forge or alter one.
//
// Construction (deterministic authenticated encryption, SIV style), per secret key K:
//   enc = HMAC-SHA256(K, "bulkmail unsubscribe v1 encryption")
//   mac = HMAC-SHA256(K, "bulkmail unsubscribe v1 authentication")
//   plaintext = issued_at (u64, seconds, big-endian) | len(category) (u8) | category | address
//   iv = first 16 bytes of HMAC-SHA256(mac, 0x01 | plaintext)
//   token = base64url(0x01 | iv | AES-256-CTR(enc, iv, plaintext))
// Verification decrypts under each configured key and compares the recomputed iv in constant
// time: the first key signs, every key verifies, so keys rotate without breaking old links.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "crypto/hmac.h"

namespace bulkmail {

struct TokenClaims {
  std::string address;  // normalized
  std::string category;
  std::int64_t issued_at = 0;  // Unix seconds
};

enum class TokenStatus { valid, malformed, forged, expired };

struct TokenCheck {
  TokenStatus status = TokenStatus::malformed;
  TokenClaims claims;  // set when valid
};

class TokenCodec {
 public:
  // `keys`: the secret file's lines, newest first. `expiry_days`: 0 for never.
  TokenCodec(const std::vector<std::string>& keys, int expiry_days);

  std::string issue(const TokenClaims& claims) const;
  TokenCheck verify(std::string_view token, UnixMillis now) const;

  static constexpr std::size_t kMaxTokenLength = 512;

 private:
  class Cipher;
  struct KeyPair {
    std::shared_ptr<const Cipher> enc;
    std::shared_ptr<const HmacSha256> mac;  // shared: TokenCodec is copied with the config
  };
  std::vector<KeyPair> keys_;
  int expiry_days_;
};

}  // namespace bulkmail
