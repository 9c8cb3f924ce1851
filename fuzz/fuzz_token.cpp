// Unsubscribe tokens: the part of every opt-out link anyone can type or alter.
//
// Input: either a token to verify, or (after a first line "issue") the claims of one to make:
// an address, a category and the time it is issued, a line each.
//
// Properties: a token verifies only as what it was issued for (a token that verifies is the one
// issue() makes of its claims: nothing else passes); one issued for a valid address and category
// verifies to exactly those claims, under its key and no other, is URL-safe and fits the length
// verify() accepts; changing any one character of it makes it invalid.
#include <cstdint>
#include <string>

#include "base/address.h"
#include "crypto/unsubscribe_token.h"
#include "fuzz_check.h"

using namespace bulkmail;

namespace {

const TokenCodec& signing() {
  static const TokenCodec codec({"fuzz key one, the signing key", "fuzz key two, an older one"}, 0);
  return codec;
}
const TokenCodec& older_only() {
  static const TokenCodec codec({"fuzz key two, an older one"}, 0);
  return codec;
}
const TokenCodec& stranger() {
  static const TokenCodec codec({"a key bulkmail never had"}, 0);
  return codec;
}

constexpr UnixMillis kNow = 1'800'000'000'000;

bool category_name(std::string_view s) {  // as the config allows them
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

void check_issued(std::string_view in) {
  auto address = parse_address(fuzz::take(in));
  std::string category(fuzz::take(in));
  std::string when(fuzz::take(in));
  if (!address || !category_name(category) || when.empty() || when.size() > 12) return;
  for (char c : when)
    if (c < '0' || c > '9') return;
  TokenClaims claims{address.value().str(), category, std::stoll(when)};
  std::string token = signing().issue(claims);
  FUZZ_CHECK(token.size() <= TokenCodec::kMaxTokenLength);
  for (char c : token)
    FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_');
  TokenCheck check = signing().verify(token, kNow);
  FUZZ_CHECK(check.status == TokenStatus::valid);
  FUZZ_CHECK(check.claims.address == claims.address);
  FUZZ_CHECK(check.claims.category == claims.category);
  FUZZ_CHECK(check.claims.issued_at == claims.issued_at);
  FUZZ_CHECK(stranger().verify(token, kNow).status != TokenStatus::valid);
  FUZZ_CHECK(older_only().verify(token, kNow).status != TokenStatus::valid);
  // One character changed, at a place and to a value the input picks.
  std::size_t at = claims.issued_at % token.size();
  std::string altered = token;
  altered[at] = altered[at] == 'A' ? 'B' : 'A';
  FUZZ_CHECK(signing().verify(altered, kNow).status != TokenStatus::valid);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view in = fuzz::text(data, size);
  if (in.substr(0, 6) == "issue\n") {
    check_issued(in.substr(6));
    return 0;
  }
  for (const TokenCodec* codec : {&signing(), &older_only()}) {
    TokenCheck check = codec->verify(in, kNow);
    if (check.status != TokenStatus::valid) continue;
    FUZZ_CHECK(signing().issue(check.claims) == in || older_only().issue(check.claims) == in);
  }
  return 0;
}
