#include "crypto/unsubscribe_token.h"

#include <doctest/doctest.h>

#include "crypto/base64.h"

using namespace bulkmail;

namespace {
const std::string kKeyA(64, 'a');
const std::string kKeyB(64, 'b');
constexpr UnixMillis kNow = 1'790'000'000'000;
}  // namespace

TEST_CASE("a token round-trips and hides the address") {
  TokenCodec codec({kKeyA}, 0);
  std::string t = codec.issue({"jane.doe@example.com", "customer-update", kNow / 1000});
  CHECK(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
        std::string::npos);
  CHECK(t.find("jane") == std::string::npos);
  auto raw = base64url_decode(t);
  REQUIRE(raw);
  CHECK(raw->find("jane") == std::string::npos);
  CHECK(raw->find("customer-update") == std::string::npos);
  auto c = codec.verify(t, kNow);
  REQUIRE(c.status == TokenStatus::valid);
  CHECK(c.claims.address == "jane.doe@example.com");
  CHECK(c.claims.category == "customer-update");
  CHECK(c.claims.issued_at == kNow / 1000);
}

TEST_CASE("tampered, truncated, garbage and wrongly keyed tokens are refused") {
  TokenCodec codec({kKeyA}, 0);
  std::string t = codec.issue({"jane@example.com", "research-invitation", kNow / 1000});
  // Every single-character change anywhere is caught.
  for (std::size_t i = 0; i < t.size(); ++i) {
    std::string bad = t;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    CAPTURE(i);
    CHECK(codec.verify(bad, kNow).status != TokenStatus::valid);
  }
  CHECK(codec.verify(t.substr(0, t.size() - 1), kNow).status != TokenStatus::valid);
  CHECK(codec.verify(t.substr(0, 20), kNow).status == TokenStatus::malformed);
  CHECK(codec.verify("", kNow).status == TokenStatus::malformed);
  CHECK(codec.verify("not a token!", kNow).status == TokenStatus::malformed);
  CHECK(codec.verify(std::string(5000, 'A'), kNow).status == TokenStatus::malformed);
  TokenCodec other({kKeyB}, 0);
  CHECK(other.verify(t, kNow).status == TokenStatus::forged);
}

TEST_CASE("rotation: the first key signs, every key verifies") {
  TokenCodec old_codec({kKeyA}, 0);
  std::string old_token = old_codec.issue({"a@example.com", "customer-update", kNow / 1000});
  TokenCodec rotated({kKeyB, kKeyA}, 0);
  CHECK(rotated.verify(old_token, kNow).status == TokenStatus::valid);
  std::string new_token = rotated.issue({"a@example.com", "customer-update", kNow / 1000});
  CHECK(new_token != old_token);
  CHECK(TokenCodec({kKeyB}, 0).verify(new_token, kNow).status == TokenStatus::valid);
  CHECK(old_codec.verify(new_token, kNow).status == TokenStatus::forged);
}

TEST_CASE("expiry is counted from issue time - 0 means never") {
  std::int64_t issued = kNow / 1000;
  TokenCodec never({kKeyA}, 0);
  TokenCodec thirty({kKeyA}, 30);
  std::string t = never.issue({"a@example.com", "customer-update", issued});
  UnixMillis day = 86'400'000;
  CHECK(never.verify(t, kNow + 3650 * day).status == TokenStatus::valid);
  CHECK(thirty.verify(t, kNow + 30 * day).status == TokenStatus::valid);
  CHECK(thirty.verify(t, kNow + 31 * day).status == TokenStatus::expired);
}

TEST_CASE("the token format never changes: links already sent keep working") {
  // Computed independently (Python's hmac and `openssl enc -aes-256-ctr`) from the format:
  // version 1, HMAC-SHA256 synthetic IV over version and claims, AES-256-CTR, base64url.
  const std::string key = std::string("0123456789abcdef") + "0123456789abcdef" +
                          "0123456789abcdef" + "0123456789abcdef";
  const std::string sent =
      "AdjwL6Mh3OxtLeOue_ipn_OK5QPbielpNuSryzQKcYkdiAl_mMyF_wrJCQtCpfYCex_tsEcnAli4MVRa";
  TokenCodec codec({key}, 0);
  CHECK(codec.issue({"pat@example.com", "research-invitation", 1'767'225'600}) == sent);
  auto c = codec.verify(sent, kNow);
  REQUIRE(c.status == TokenStatus::valid);
  CHECK(c.claims.address == "pat@example.com");
  CHECK(c.claims.category == "research-invitation");
}
