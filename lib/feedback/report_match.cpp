#include "feedback/report_match.h"

#include "base/text.h"

namespace bulkmail {

std::string_view to_string(MatchStatus s) {
  switch (s) {
    case MatchStatus::matched:
      return "matched";
    case MatchStatus::unmatched:
      return "unmatched";
    case MatchStatus::forged:
      return "forged";
    case MatchStatus::not_sent:
      return "not-sent";
    case MatchStatus::in_flight:
      return "in-flight";
  }
  return "unmatched";
}

namespace {

// What one place a token may stand in says.
enum class Token { absent, forged, names };

struct Found {
  Token token = Token::absent;
  std::optional<SentMessage> message;
};

// The VERP token of `address` when it is a return path at the bounce domain ("b-...@domain").
Found verp_of(const std::string& address, const MatchKeys& keys, Store& store) {
  if (!keys.verp || keys.bounce_domain.empty()) return {};
  auto at = address.rfind('@');
  if (at == std::string::npos) return {};
  std::string_view local = std::string_view(address).substr(0, at);
  std::string_view domain = std::string_view(address).substr(at + 1);
  if (!iequals(domain, keys.bounce_domain)) return {};
  if (local.size() < VerpCodec::kPrefix.size() ||
      !iequals(local.substr(0, VerpCodec::kPrefix.size()), VerpCodec::kPrefix)) {
    return {};  // fbl@, postmaster@: no token here
  }
  auto id = keys.verp->verify(local);
  if (!id) return {Token::forged, std::nullopt};
  return {Token::names, store.find_message(*id)};
}

// The unsubscribe token in one of the original's List-Unsubscribe URIs, when it is bulkmail's own
// link (<unsubscribe.url>/<token>).
Found unsubscribe_token_of(const OriginalMessage& original, const MatchKeys& keys, Store& store,
                           UnixMillis now) {
  if (!keys.tokens || keys.unsubscribe_url.empty()) return {};
  const std::string prefix = keys.unsubscribe_url + "/";
  for (const std::string& uri : original.list_unsubscribe) {
    if (uri.size() <= prefix.size() || uri.compare(0, prefix.size(), prefix) != 0) continue;
    std::string_view token = std::string_view(uri).substr(prefix.size());
    token = token.substr(0, token.find_first_of("?#"));
    TokenCheck check = keys.tokens->verify(token, now);
    if (check.status == TokenStatus::malformed || check.status == TokenStatus::forged) {
      return {Token::forged, std::nullopt};
    }
    if (check.status != TokenStatus::valid) return {};  // expired: says too little now
    // The List-Id, when there is one, names the same category ("<category>.<domain>").
    const std::string& list_id = original.list_id;
    if (!list_id.empty() && list_id.rfind(check.claims.category + ".", 0) != 0) return {};
    return {Token::names, store.find_message_sent_to(check.claims.address, check.claims.category,
                                                     check.claims.issued_at * 1000)};
  }
  return {};
}

Match matched(const std::optional<SentMessage>& m, std::string via) {
  if (!m) return {MatchStatus::unmatched, std::nullopt, via + " naming no message kept"};
  MatchStatus s = takes_reports(m->state)             ? MatchStatus::matched
                  : m->state == MessageState::sending ? MatchStatus::in_flight
                                                      : MatchStatus::not_sent;
  return {s, m, std::move(via)};
}

}  // namespace

Match match_report(const Report& report, const std::vector<std::string>& envelope_recipients,
                   const MatchKeys& keys, Store& store, UnixMillis now) {
  // 1. A return path: the ones the report came to, then the ones it quotes.
  struct Place {
    const std::string& address;
    const char* via;
  };
  std::vector<Place> places;
  for (const std::string& a : envelope_recipients) places.push_back({a, "return path"});
  places.push_back({report.original_mail_from, "quoted return path"});
  places.push_back({report.original.return_path, "quoted return path"});
  for (const Place& p : places) {
    Found f = verp_of(p.address, keys, store);
    if (f.token == Token::forged) {
      return {MatchStatus::forged, std::nullopt, std::string("a forged ") + p.via + " token"};
    }
    if (f.token == Token::names) return matched(f.message, p.via);
  }
  // 2. The returned original's Message-ID.
  if (auto m = store.find_message_by_header(report.original.message_id)) {
    return matched(m, "Message-ID");
  }
  // 3. Its unsubscribe link.
  Found f = unsubscribe_token_of(report.original, keys, store, now);
  if (f.token == Token::forged) {
    return {MatchStatus::forged, std::nullopt, "a forged unsubscribe token"};
  }
  if (f.token == Token::names) return matched(f.message, "unsubscribe token");
  return {MatchStatus::unmatched, std::nullopt,
          report.original.found ? "nothing in the returned message names a message sent"
                                : "no return path token and no returned message"};
}

}  // namespace bulkmail
