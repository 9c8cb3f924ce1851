#include "crypto/verp_token.h"

#include <openssl/crypto.h>

#include <array>
#include <stdexcept>

namespace bulkmail {
namespace {

constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::string_view kMacLabel{"bulkmail-verp\0", 14};  // the NUL is part of the label
constexpr std::size_t kMaxTokenBytes = 8 + VerpCodec::kMacBytes;

// The 5-bit value of a base32 character in either case, or -1.
int base32_value(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

std::string base32_encode(const unsigned char* bytes, std::size_t n) {
  std::string out;
  out.reserve((n * 8 + 4) / 5);
  unsigned buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    buffer = (buffer << 8) | bytes[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += kAlphabet[(buffer >> bits) & 31];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
  return out;
}

// Decodes into `out` (room for kMaxTokenBytes); returns the byte count, or 0 when `text` is not
// the canonical spelling of some bytes: a character outside the alphabet, a last character that
// holds a whole unused group of 5 bits, or unused bits that are not zero.
std::size_t base32_decode(std::string_view text, std::array<unsigned char, kMaxTokenBytes>& out) {
  std::size_t n = 0;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = base32_value(c);
    if (v < 0) return 0;
    buffer = (buffer << 5) | static_cast<unsigned>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (n == out.size()) return 0;
      out[n++] = static_cast<unsigned char>((buffer >> bits) & 0xFF);
    }
  }
  if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0) return 0;
  return n;
}

HmacSha256::Mac id_mac(const HmacSha256& key, std::uint64_t id) {
  char be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<char>((id >> (56 - 8 * i)) & 0xFF);
  return key.mac(kMacLabel, std::string_view(be, sizeof be));
}

}  // namespace

VerpCodec::VerpCodec(const std::vector<std::string>& keys) {
  if (keys.empty()) throw std::invalid_argument("VerpCodec needs at least one key");
  for (const auto& k : keys) keys_.push_back(std::make_shared<const HmacSha256>(k));
}

std::string VerpCodec::local_part(std::int64_t id) const {
  if (id < 0) throw std::invalid_argument("a VERP token names a message id, never a negative one");
  auto u = static_cast<std::uint64_t>(id);
  std::array<unsigned char, kMaxTokenBytes> raw{};
  std::size_t n = 0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    auto byte = static_cast<unsigned char>((u >> shift) & 0xFF);
    if (n > 0 || byte != 0) raw[n++] = byte;
  }
  auto mac = id_mac(*keys_.front(), u);
  for (std::size_t i = 0; i < kMacBytes; ++i) raw[n++] = mac[i];
  return std::string(kPrefix) + base32_encode(raw.data(), n);
}

std::optional<std::int64_t> VerpCodec::verify(std::string_view local_part) const {
  if (local_part.size() < kMinLocalPartLength || local_part.size() > kMaxLocalPartLength)
    return std::nullopt;
  if ((local_part[0] != 'b' && local_part[0] != 'B') || local_part[1] != '-') return std::nullopt;
  std::array<unsigned char, kMaxTokenBytes> raw{};
  std::size_t n = base32_decode(local_part.substr(kPrefix.size()), raw);
  if (n < kMacBytes) return std::nullopt;
  std::size_t id_len = n - kMacBytes;
  // One spelling per id: no leading zero byte, and never the sign bit of an int64.
  if (id_len > 0 && raw[0] == 0) return std::nullopt;
  if (id_len == 8 && (raw[0] & 0x80) != 0) return std::nullopt;
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < id_len; ++i) id = (id << 8) | raw[i];
  const unsigned char* given = raw.data() + id_len;
  bool valid = false;
  // Every key is tried, whichever matches: the time taken says nothing about which did.
  for (const auto& key : keys_) {
    auto expected = id_mac(*key, id);
    valid |= CRYPTO_memcmp(expected.data(), given, kMacBytes) == 0;
  }
  if (!valid) return std::nullopt;
  return static_cast<std::int64_t>(id);
}

std::string verp_address(const VerpCodec& codec, std::int64_t id, std::string_view domain) {
  std::string address = codec.local_part(id);
  address += '@';
  address += domain;
  return address;
}

}  // namespace bulkmail
