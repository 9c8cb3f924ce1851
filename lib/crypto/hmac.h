// HMAC-SHA256 under one key, prepared once: each mac() copies a keyed context instead of setting
// the key up again (OpenSSL's one-shot HMAC() looks the digest up and hashes the key every call).
// mac() may be called from many threads at once.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <string_view>

namespace bulkmail {

class HmacSha256 {
 public:
  using Mac = std::array<unsigned char, 32>;

  explicit HmacSha256(std::string_view key);
  // The MAC of `a` followed by `b`.
  Mac mac(std::string_view a, std::string_view b = {}) const;

 private:
  struct CtxFree {
    void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
  };
  std::unique_ptr<EVP_MAC_CTX, CtxFree> keyed_;
};

}  // namespace bulkmail
