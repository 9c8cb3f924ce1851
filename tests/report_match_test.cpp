// Matching a report to the message it is about (report_match.h), against a real queue file with
// tokens made by the real codecs.
#include "feedback/report_match.h"

#include <doctest/doctest.h>

#include "sent_queue.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

const std::vector<std::string> kKeys = {"0123456789abcdef0123456789abcdef",
                                        "fedcba9876543210fedcba9876543210"};

struct Keys {
  TokenCodec tokens{kKeys, 0};
  MatchKeys keys;
  Keys() {
    keys.verp.emplace(kKeys);
    keys.bounce_domain = "bounces.mail.example.com";
    keys.tokens = &tokens;
    keys.unsubscribe_url = "https://mail.example.com/u";
  }
  std::string return_path(MessageId id) const {
    return verp_address(*keys.verp, id, keys.bounce_domain);
  }
};

Report bounce_for(const std::string& recipient) {
  Report r;
  r.kind = ReportKind::bounce;
  r.recipients.push_back(
      {recipient, "", "failed", "5.1.1", "550 5.1.1 user unknown", 550, "", BounceClass::hard});
  return r;
}

}  // namespace

TEST_CASE("matching by the return path the report came to, in any case") {
  SentQueue q(2);
  Keys k;
  Report r = bounce_for("r1@example.com");
  Match m = match_report(r, {k.return_path(q.ids[1])}, k.keys, q.s, 20'000);
  CHECK(m.status == MatchStatus::matched);
  REQUIRE(m.message);
  CHECK(m.message->id == q.ids[1]);
  CHECK(m.via == "return path");
  // A server that upper-cases local parts (and the domain).
  std::string upper = k.return_path(q.ids[0]);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Match u = match_report(r, {upper}, k.keys, q.s, 20'000);
  CHECK(u.status == MatchStatus::matched);
  CHECK(u.message->id == q.ids[0]);
  // Signed with the older key, still in the file: verifies.
  MatchKeys old = k.keys;
  old.verp.emplace(std::vector<std::string>{kKeys[1]});
  Match rotated =
      match_report(r, {verp_address(*old.verp, q.ids[0], old.bounce_domain)}, k.keys, q.s, 20'000);
  CHECK(rotated.status == MatchStatus::matched);
}

TEST_CASE("a token no key made is a forgery, whatever else the report names") {
  SentQueue q(1);
  Keys k;
  Report r = bounce_for("r0@example.com");
  r.original.found = true;
  r.original.message_id = "<" + std::to_string(q.ids[0]) + "@mail.example.com>";  // real
  std::string real = k.return_path(q.ids[0]);
  std::string altered = real;
  altered[4] = altered[4] == 'a' ? 'b' : 'a';
  Match m = match_report(r, {altered}, k.keys, q.s, 20'000);
  CHECK(m.status == MatchStatus::forged);
  CHECK_FALSE(m.message);
  CHECK(m.via == "a forged return path token");
  CHECK(match_report(r, {"b-zzzzzzzzzzzzzzzzzz@bounces.mail.example.com"}, k.keys, q.s, 20'000)
            .status == MatchStatus::forged);
  // A forged token in the quoted return path (ARF's Original-Mail-From) too.
  Report arf;
  arf.kind = ReportKind::complaint;
  arf.original_mail_from = altered;
  arf.original = r.original;
  CHECK(match_report(arf, {"fbl@bounces.mail.example.com"}, k.keys, q.s, 20'000).status ==
        MatchStatus::forged);
}

TEST_CASE("without a token, the returned Message-ID, then the unsubscribe link") {
  SentQueue q(2);
  Keys k;
  Report r;
  r.kind = ReportKind::complaint;
  r.original.found = true;
  r.original.message_id = "<" + std::to_string(q.ids[1]) + "@mail.example.com>";
  Match m = match_report(r, {"fbl@bounces.mail.example.com"}, k.keys, q.s, 20'000);
  CHECK(m.status == MatchStatus::matched);
  CHECK(m.via == "Message-ID");
  CHECK(m.message->id == q.ids[1]);
  // A return path at another domain is not bulkmail's: the Message-ID still decides.
  CHECK(match_report(r, {"b-whatever@elsewhere.example"}, k.keys, q.s, 20'000).status ==
        MatchStatus::matched);

  r.original.message_id = "<never@mail.example.com>";
  Match none = match_report(r, {}, k.keys, q.s, 20'000);
  CHECK(none.status == MatchStatus::unmatched);

  // The unsubscribe link of r0's message (issued when it was composed, before it was sent).
  std::string token = k.tokens.issue({"r0@example.com", "customer-update", 9});
  r.original.list_unsubscribe = {"mailto:unsubscribe@mail.example.com?subject=unsubscribe",
                                 "https://mail.example.com/u/" + token};
  r.original.list_id = "customer-update.mail.example.com";
  Match by_token = match_report(r, {}, k.keys, q.s, 20'000);
  CHECK(by_token.status == MatchStatus::matched);
  CHECK(by_token.via == "unsubscribe token");
  CHECK(by_token.message->id == q.ids[0]);
  // A List-Id of another category: the link is not this message's.
  r.original.list_id = "research-invitation.mail.example.com";
  CHECK(match_report(r, {}, k.keys, q.s, 20'000).status == MatchStatus::unmatched);
  // An altered link is a forgery.
  r.original.list_id.clear();
  token[10] = token[10] == 'A' ? 'B' : 'A';
  r.original.list_unsubscribe = {"https://mail.example.com/u/" + token};
  CHECK(match_report(r, {}, k.keys, q.s, 20'000).status == MatchStatus::forged);
  // Someone else's link is not looked at.
  r.original.list_unsubscribe = {"https://other.example/u/" + token};
  CHECK(match_report(r, {}, k.keys, q.s, 20'000).status == MatchStatus::unmatched);
}

TEST_CASE("a token of a message never handed to the relay matches nothing to act on") {
  SentQueue q(0);
  Keys k;
  NewMessage waiting{"nov", "customer-update", "w@example.com", "{}"};
  MessageId id = q.s.enqueue({&waiting, 1}, "test", 1000).front().id;
  Match m = match_report(bounce_for("w@example.com"), {k.return_path(id)}, k.keys, q.s, 20'000);
  CHECK(m.status == MatchStatus::not_sent);
  REQUIRE(m.message);
  CHECK(m.message->id == id);
  // A token of a message since deleted (retention, forget): unmatched.
  Match gone =
      match_report(bounce_for("x@example.com"), {k.return_path(id + 100)}, k.keys, q.s, 20'000);
  CHECK(gone.status == MatchStatus::unmatched);
}

TEST_CASE("a report about a message still being handed to the relay is to be tried again later") {
  SentQueue q(0);
  Keys k;
  NewMessage m{"nov", "customer-update", "early@example.com", "{}"};
  q.s.enqueue({&m, 1}, "test", 1000);
  auto claimed = q.s.claim_due("test", 1, 2000, 60'000);  // a daemon is sending it
  REQUIRE(claimed.size() == 1);
  Match early = match_report(bounce_for("early@example.com"), {k.return_path(claimed[0].id)},
                             k.keys, q.s, 20'000);
  CHECK(early.status == MatchStatus::in_flight);
  CHECK(to_string(early.status) == "in-flight");
}
