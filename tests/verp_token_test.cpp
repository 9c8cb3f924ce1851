#include "crypto/verp_token.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>

#include "crypto/hmac.h"

using namespace bulkmail;

namespace {

const std::string kKeyA(64, 'a');
const std::string kKeyB(64, 'b');

// The format, written out again here and independently of the codec: base32 (RFC 4648, lower
// case, no padding) of `id_bytes` and the first 10 bytes of HMAC-SHA256(key, label | id as 8
// bytes). `id_bytes` is given, so that a test can spell an id as the codec never would.
std::string spelled(const std::string& key, std::uint64_t id, const std::string& id_bytes) {
  char be[8];
  for (int i = 0; i < 8; ++i) be[i] = static_cast<char>(id >> (56 - 8 * i));
  auto mac = HmacSha256(key).mac(std::string_view("bulkmail-verp\0", 14), std::string_view(be, 8));
  std::string raw = id_bytes + std::string(reinterpret_cast<const char*>(mac.data()), 10);
  const char* alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out = "b-";
  std::uint64_t buffer = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    buffer = (buffer << 8) | c;
    bits += 8;
    for (; bits >= 5; bits -= 5) out += alphabet[(buffer >> (bits - 5)) & 31];
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

}  // namespace

TEST_CASE("a return path round-trips every id, in at most 31 characters of [a-z2-7] after b-") {
  VerpCodec codec({kKeyA});
  const std::pair<std::int64_t, std::size_t> cases[] = {
      // id, the local part's length ("b-" and the token)
      {0, 18},
      {1, 20},
      {42, 20},
      {255, 20},
      {256, 22},
      {65'535, 22},
      {65'536, 23},
      {16'777'215, 23},  // every queue short of 16.7 million messages
      {16'777'216, 25},
      {std::int64_t{1} << 32, 26},
      {std::int64_t{1} << 40, 28},
      {std::int64_t{1} << 48, 30},
      {std::int64_t{1} << 56, 31},
      {std::numeric_limits<std::int64_t>::max(), 31},
  };
  for (const auto& [id, length] : cases) {
    CAPTURE(id);
    std::string local = codec.local_part(id);
    CHECK(local.size() == length);
    CHECK(local.size() <= VerpCodec::kMaxLocalPartLength);
    CHECK(local.rfind("b-", 0) == 0);
    CHECK(local.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567", 2) == std::string::npos);
    CHECK(codec.verify(local) == id);
    CHECK(codec.local_part(id) == local);  // deterministic: one return path per message
  }
  CHECK(codec.local_part(42) != codec.local_part(43));
}

TEST_CASE("the token is base32 of the id's bytes and a truncated HMAC, as documented") {
  VerpCodec codec({kKeyA});
  CHECK(codec.local_part(42) == spelled(kKeyA, 42, "\x2a"));
  CHECK(codec.local_part(0) == spelled(kKeyA, 0, ""));
  CHECK(codec.local_part(0x010203) == spelled(kKeyA, 0x010203, "\x01\x02\x03"));
  CHECK(verp_address(codec, 42, "bounces.mail.example.com") ==
        codec.local_part(42) + "@bounces.mail.example.com");
}

TEST_CASE("rotation: the first key signs, every key verifies, a dropped key no longer does") {
  VerpCodec old_codec({kKeyA});
  std::string old_path = old_codec.local_part(7);
  VerpCodec rotated({kKeyB, kKeyA});
  CHECK(rotated.verify(old_path) == 7);
  std::string new_path = rotated.local_part(7);
  CHECK(new_path != old_path);
  CHECK(VerpCodec({kKeyB}).verify(new_path) == 7);
  CHECK(VerpCodec({kKeyB}).verify(old_path) == std::nullopt);  // key A dropped
  CHECK(old_codec.verify(new_path) == std::nullopt);
  VerpCodec copy = rotated;  // copies share the keys
  CHECK(copy.verify(old_path) == 7);
}

TEST_CASE("a server that changes the local part's case changes nothing") {
  VerpCodec codec({kKeyA});
  std::string local = codec.local_part(123'456);
  CHECK(codec.verify(upper(local)) == 123'456);
  std::string mixed = local;
  for (std::size_t i = 0; i < mixed.size(); i += 2) mixed[i] = upper(mixed.substr(i, 1))[0];
  CHECK(codec.verify(mixed) == 123'456);
}

TEST_CASE("altered, truncated and extended tokens are refused") {
  VerpCodec codec({kKeyA});
  const std::string local = codec.local_part(987'654);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  // Every other character of the alphabet at every place: none is another valid spelling.
  for (std::size_t i = 2; i < local.size(); ++i) {
    for (char c : alphabet) {
      if (c == local[i]) continue;
      std::string bad = local;
      bad[i] = c;
      CAPTURE(bad);
      CHECK(codec.verify(bad) == std::nullopt);
    }
  }
  for (std::size_t n = 0; n < local.size(); ++n) {
    CAPTURE(n);
    CHECK(codec.verify(local.substr(0, n)) == std::nullopt);
  }
  for (const char* tail : {"a", "q", "aa", "2222", "-", "+x", "="})
    CHECK(codec.verify(local + tail) == std::nullopt);
  CHECK(codec.verify("c" + local.substr(1)) == std::nullopt);  // another prefix
  CHECK(codec.verify("b+" + local.substr(2)) == std::nullopt);
  CHECK(codec.verify("b-" + local) == std::nullopt);
}

TEST_CASE("one message's MAC never vouches for another id, nor for another spelling of its own") {
  VerpCodec codec({kKeyA});
  // Message 43's id with message 42's MAC.
  CHECK(codec.verify(spelled(kKeyA, 42, "\x2b")) == std::nullopt);
  CHECK(codec.verify(spelled(kKeyA, 43, "\x2b")) == 43);  // the same layout, its own MAC
  // Leading zero bytes would be a second spelling of 42, and 8 bytes with the sign bit set a
  // negative id: both are refused even with a MAC the key made.
  CHECK(codec.verify(spelled(kKeyA, 42, std::string("\0\x2a", 2))) == std::nullopt);
  CHECK(codec.verify(spelled(kKeyA, 0, std::string(1, '\0'))) == std::nullopt);
  CHECK(codec.verify(spelled(kKeyA, 0xFF00000000000001ULL,
                             std::string("\xFF\x00\x00\x00\x00\x00\x00\x01", 8))) == std::nullopt);
  // Another key's MAC.
  CHECK(codec.verify(spelled(kKeyB, 42, "\x2a")) == std::nullopt);
}

TEST_CASE("garbage is refused without an exception, whatever its length") {
  VerpCodec codec({kKeyA});
  for (const std::string& s :
       {std::string(), std::string("b-"), std::string("fbl"), std::string("postmaster"),
        std::string("b-") + std::string(16, 'a'), std::string("b-") + std::string(16, '0'),
        std::string("b-") + std::string(29, '7'), std::string("b-") + std::string(5000, 'a'),
        std::string("b-\0aaaaaaaaaaaaaaaa", 19),
        std::string("b-aaaaaaaa\xC3\xA9"
                    "aaaaaaaa"),
        std::string(100'000, 'b')}) {
    CAPTURE(s.size());
    CHECK_NOTHROW(CHECK(codec.verify(s) == std::nullopt));
  }
  // Random strings over the alphabet, '-' and a few bytes relays mangle, at every length a token
  // can have and around it.
  std::mt19937_64 gen(15);
  const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+=.\0";
  const std::string chars(kChars, sizeof kChars - 1);  // the NUL included
  for (int i = 0; i < 20'000; ++i) {
    std::string s = i % 2 ? "b-" : "";
    std::size_t n = gen() % 34;
    for (std::size_t j = 0; j < n; ++j) s += chars[gen() % chars.size()];
    CHECK_NOTHROW(CHECK(codec.verify(s) == std::nullopt));
  }
}

TEST_CASE("a codec needs a key, and an id is never negative") {
  CHECK_THROWS_AS(VerpCodec({}), std::invalid_argument);
  VerpCodec codec({kKeyA});
  CHECK_THROWS_AS(codec.local_part(-1), std::invalid_argument);
}
