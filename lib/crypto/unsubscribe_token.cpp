#include "crypto/unsubscribe_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

#include "crypto/base64.h"

namespace bulkmail {
namespace {

constexpr unsigned char kVersion = 1;
constexpr std::size_t kIvLen = 16;

}  // namespace

// AES-256-CTR under one key, its key schedule computed once; each use copies the keyed context.
// AES-CTR is its own inverse: the same call encrypts and decrypts.
class TokenCodec::Cipher {
 public:
  explicit Cipher(const HmacSha256::Mac& key) {
    std::unique_ptr<EVP_CIPHER, CipherFree> aes(EVP_CIPHER_fetch(nullptr, "AES-256-CTR", nullptr));
    keyed_.reset(EVP_CIPHER_CTX_new());
    if (!aes || !keyed_ ||
        EVP_EncryptInit_ex2(keyed_.get(), aes.get(), key.data(), nullptr, nullptr) != 1) {
      throw std::runtime_error("AES-256-CTR setup failed");
    }
  }
  std::string apply(const unsigned char* iv, std::string_view in) const {
    std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
    std::string out(in.size(), '\0');
    int len = 0;
    if (!ctx || EVP_CIPHER_CTX_copy(ctx.get(), keyed_.get()) != 1 ||
        EVP_EncryptInit_ex2(ctx.get(), nullptr, nullptr, iv, nullptr) != 1 ||
        EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size())) != 1) {
      throw std::runtime_error("AES-256-CTR failed");
    }
    return out;
  }

 private:
  struct CipherFree {
    void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
  };
  struct CtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  };
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> keyed_;
};

namespace {

HmacSha256::Mac synthetic_iv(const HmacSha256& mac, std::string_view plaintext) {
  const char version = static_cast<char>(kVersion);
  return mac.mac(std::string_view(&version, 1), plaintext);
}

}  // namespace

TokenCodec::TokenCodec(const std::vector<std::string>& keys, int expiry_days)
    : expiry_days_(expiry_days) {
  if (keys.empty()) throw std::invalid_argument("TokenCodec needs at least one key");
  for (const auto& k : keys) {
    HmacSha256 derive(k);
    auto mac_key = derive.mac("bulkmail unsubscribe v1 authentication");
    keys_.push_back(
        {std::make_shared<const Cipher>(derive.mac("bulkmail unsubscribe v1 encryption")),
         std::make_shared<const HmacSha256>(
             std::string_view(reinterpret_cast<const char*>(mac_key.data()), mac_key.size()))});
  }
}

std::string TokenCodec::issue(const TokenClaims& c) const {
  if (c.category.size() > 255) throw std::invalid_argument("category name too long for a token");
  std::string pt;
  pt.reserve(9 + c.category.size() + c.address.size());
  auto t = static_cast<std::uint64_t>(c.issued_at);
  for (int shift = 56; shift >= 0; shift -= 8) pt += static_cast<char>((t >> shift) & 0xFF);
  pt += static_cast<char>(c.category.size());
  pt += c.category;
  pt += c.address;
  const KeyPair& k = keys_.front();
  auto iv = synthetic_iv(*k.mac, pt);
  std::string raw;
  raw.reserve(1 + kIvLen + pt.size());
  raw += static_cast<char>(kVersion);
  raw.append(reinterpret_cast<const char*>(iv.data()), kIvLen);
  raw += k.enc->apply(iv.data(), pt);
  return base64url_encode(raw);
}

TokenCheck TokenCodec::verify(std::string_view token, UnixMillis now) const {
  TokenCheck check;
  if (token.empty() || token.size() > kMaxTokenLength) return check;
  auto raw = base64url_decode(token);
  if (!raw || raw->size() < 1 + kIvLen + 9 + 1 || static_cast<unsigned char>((*raw)[0]) != kVersion)
    return check;
  const auto* iv = reinterpret_cast<const unsigned char*>(raw->data() + 1);
  std::string_view ct(raw->data() + 1 + kIvLen, raw->size() - 1 - kIvLen);
  check.status = TokenStatus::forged;
  for (const KeyPair& k : keys_) {
    std::string pt = k.enc->apply(iv, ct);
    auto expected = synthetic_iv(*k.mac, pt);
    if (CRYPTO_memcmp(expected.data(), iv, kIvLen) != 0) continue;
    std::uint64_t t = 0;
    for (int i = 0; i < 8; ++i)
      t = (t << 8) | static_cast<unsigned char>(pt[static_cast<std::size_t>(i)]);
    std::size_t cat_len = static_cast<unsigned char>(pt[8]);
    if (pt.size() < 9 + cat_len + 3) return {TokenStatus::malformed, {}};
    check.claims.issued_at = static_cast<std::int64_t>(t);
    check.claims.category = pt.substr(9, cat_len);
    check.claims.address = pt.substr(9 + cat_len);
    if (expiry_days_ > 0 &&
        now / 1000 - check.claims.issued_at > std::int64_t{expiry_days_} * 86400) {
      check.status = TokenStatus::expired;
      return check;
    }
    check.status = TokenStatus::valid;
    return check;
  }
  return check;
}

}  // namespace bulkmail
