// SqliteStore's side of the feedback loop (store.h: find_message*, record_reports) on a real
// database file.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "sent_queue.h"
#include "store/sqlite/sqlite_store.h"
#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

using Sent = SentQueue;

int digest_counter = 0;
ReceivedReport report(std::vector<Feedback> feedback, std::vector<std::string> counters = {}) {
  ReceivedReport r;
  r.digest = "digest-" + std::to_string(++digest_counter);
  r.feedback = std::move(feedback);
  r.counters = std::move(counters);
  r.source = "bounce-test";
  return r;
}

Feedback hard(MessageId id) {
  return {id, FeedbackKind::hard_bounce, "5.1.1", "550 5.1.1 user unknown", "mx.example.com"};
}
Feedback of_kind(MessageId id, FeedbackKind k, const std::string& status) {
  return {id, k, status, "", "mx.example.com"};
}

ReportRecorded record_one(Store& s, ReceivedReport r, UnixMillis now = 20'000,
                          const FeedbackPolicy& p = {}) {
  return s.record_reports({&r, 1}, p, now).front();
}

std::int64_t counter(Store& s, const std::string& name) {
  for (auto& [n, v] : s.feedback_counters()) {
    if (n == name) return v;
  }
  return 0;
}

}  // namespace

TEST_CASE("a sent message is found by its id and by its Message-ID, a queued one is no target") {
  Sent q(2);
  auto m = q.s.find_message(q.ids[0]);
  REQUIRE(m);
  CHECK(m->recipient == "r0@example.com");
  CHECK(m->campaign == "nov");
  CHECK(m->state == MessageState::sent);
  CHECK(m->sent_at == 10'000);
  CHECK(takes_reports(m->state));
  auto by_header =
      q.s.find_message_by_header("<" + std::to_string(q.ids[1]) + "@mail.example.com>");
  REQUIRE(by_header);
  CHECK(by_header->id == q.ids[1]);
  CHECK_FALSE(q.s.find_message_by_header("<never@mail.example.com>"));
  CHECK_FALSE(q.s.find_message_by_header(""));
  CHECK_FALSE(q.s.find_message(99'999));
  auto to = q.s.find_message_sent_to("r1@example.com", "customer-update", 9'000);
  REQUIRE(to);
  CHECK(to->id == q.ids[1]);
  CHECK_FALSE(q.s.find_message_sent_to("r1@example.com", "customer-update", 10'001));
  CHECK_FALSE(q.s.find_message_sent_to("r1@example.com", "research-invitation", 0));

  NewMessage waiting{"nov", "customer-update", "later@example.com", "{}"};
  auto e = q.s.enqueue({&waiting, 1}, "test", 30'000).front();
  auto w = q.s.find_message(e.id);
  REQUIRE(w);
  CHECK_FALSE(takes_reports(w->state));
  auto r = record_one(q.s, report({hard(e.id)}));
  REQUIRE(r.applied.size() == 1);
  CHECK_FALSE(r.applied[0].applied);  // never handed to the relay: nothing happens
  CHECK_FALSE(q.s.find_suppression("later@example.com", "customer-update"));
}

TEST_CASE(
    "a hard bounce: the message becomes bounced, the address suppressed, the history says "
    "so") {
  Sent q(3);
  auto r = record_one(q.s, report({hard(q.ids[0])}, {"report:bounce", "class:hard"}));
  CHECK_FALSE(r.duplicate);
  REQUIRE(r.applied.size() == 1);
  CHECK(r.applied[0].applied);
  CHECK(r.applied[0].suppressed);
  auto m = q.s.find_message(q.ids[0]);
  CHECK(m->state == MessageState::bounced);
  CHECK(m->feedback == "hard");
  CHECK(m->sent_at == 10'000);  // the time it was sent stays
  auto sup = q.s.find_suppression("r0@example.com", "research-invitation");
  REQUIRE(sup);
  CHECK(sup->category.empty());
  CHECK(sup->reason == SuppressionReason::hard_bounce);
  CHECK(sup->source == "bounce-test");
  auto h = q.s.history("r0@example.com");
  bool saw_event = false;
  for (const Event& e : h) {
    if (e.type == "hard-bounce") {
      saw_event = true;
      CHECK(e.detail == "5.1.1 from mx.example.com: 550 5.1.1 user unknown");
      CHECK(e.message == q.ids[0]);
      CHECK(e.campaign == "nov");
      CHECK(e.source == "bounce-test");
    }
  }
  CHECK(saw_event);
  // The daily limit still counts it as sent today.
  CHECK(q.s.count_sent_since(10'000) == 3);
  // Nothing else changed.
  CHECK(q.s.find_message(q.ids[1])->state == MessageState::sent);
  CHECK_FALSE(q.s.find_suppression("r1@example.com", "customer-update"));
  auto c = q.s.campaign("nov");
  CHECK(c->counts[MessageState::bounced] == 1);
  CHECK(c->counts[MessageState::sent] == 2);
  CHECK(c->feedback.answered == 3);
  CHECK(c->feedback.hard_bounces == 1);
  CHECK(counter(q.s, "report:bounce") == 1);
  CHECK(counter(q.s, "class:hard") == 1);
}

TEST_CASE("the same report twice counts once") {
  Sent q(1);
  ReceivedReport r = report({hard(q.ids[0])}, {"report:bounce"});
  CHECK_FALSE(record_one(q.s, r).duplicate);
  auto again = record_one(q.s, r);
  CHECK(again.duplicate);
  CHECK(again.applied.empty());
  CHECK(counter(q.s, "report:bounce") == 1);
  CHECK(counter(q.s, "duplicate") == 1);
  int events = 0;
  for (const Event& e : q.s.history("r0@example.com")) events += e.type == "hard-bounce";
  CHECK(events == 1);
}

TEST_CASE(
    "a complaint suppresses all mail at once, over an unsubscribe, and not-spam only records") {
  Sent q(2);
  Suppression unsub{"r0@example.com", "customer-update", SuppressionReason::unsubscribe,
                    "one-click", 0};
  q.s.suppress({&unsub, 1}, 15'000);
  auto r = record_one(q.s, report({of_kind(q.ids[0], FeedbackKind::complaint, "abuse")}));
  CHECK(r.applied.at(0).suppressed);
  CHECK(q.s.find_message(q.ids[0])->state == MessageState::complained);
  auto sup = q.s.find_suppression("r0@example.com", "research-invitation");
  REQUIRE(sup);
  CHECK(sup->reason == SuppressionReason::complaint);
  CHECK(q.s.campaign("nov")->feedback.complaints == 1);

  auto note =
      record_one(q.s, report({of_kind(q.ids[1], FeedbackKind::complaint_note, "not-spam")}));
  CHECK(note.applied.at(0).applied);
  CHECK_FALSE(note.applied.at(0).suppressed);
  CHECK(q.s.find_message(q.ids[1])->state == MessageState::sent);
  CHECK(q.s.find_message(q.ids[1])->feedback.empty());
  CHECK_FALSE(q.s.find_suppression("r1@example.com", "customer-update"));
  bool noted = false;
  for (const Event& e : q.s.history("r1@example.com")) noted |= e.type == "complaint-note";
  CHECK(noted);
}

TEST_CASE("a block is counted for the campaign and suppresses nobody") {
  Sent q(2);
  auto r = record_one(q.s, report({of_kind(q.ids[0], FeedbackKind::policy_block, "5.7.1")}));
  CHECK_FALSE(r.applied.at(0).suppressed);
  CHECK(q.s.find_message(q.ids[0])->state == MessageState::sent);
  CHECK(q.s.campaign("nov")->feedback.blocks == 1);
  CHECK_FALSE(q.s.find_suppression("r0@example.com", "customer-update"));
}

TEST_CASE("soft bounces: the third in a row suppresses, a delivery between them breaks the run") {
  FeedbackPolicy p;
  Sent q(0);
  // Three messages to one address, in three campaigns, sent a day apart.
  const UnixMillis day = 24LL * 3600 * 1000;
  for (int i = 0; i < 3; ++i) q.add(1, 10'000 + i * day, "c" + std::to_string(i), "full");
  auto soft = [&](MessageId id, UnixMillis now) {
    return record_one(q.s, report({of_kind(id, FeedbackKind::soft_bounce, "5.2.2")}), now, p)
        .applied.at(0);
  };
  CHECK(soft(q.ids[0], 20'000).soft_count == 1);
  // The delay notice and then the failure of the same message count once.
  CHECK(soft(q.ids[0], 30'000).soft_count == 1);
  CHECK(soft(q.ids[1], day + 20'000).soft_count == 2);
  // Message 0's final failure after message 1's report: counted before, the run stays at 2.
  CHECK(soft(q.ids[0], day + 30'000).soft_count == 2);
  CHECK_FALSE(q.s.find_suppression("full0@example.com", "customer-update"));
  auto third = soft(q.ids[2], 2 * day + 20'000);
  CHECK(third.soft_count == 3);
  CHECK(third.suppressed);
  auto sup = q.s.find_suppression("full0@example.com", "customer-update");
  REQUIRE(sup);
  CHECK(sup->reason == SuppressionReason::soft_bounce);
  CHECK(sup->category.empty());

  // Another address: a message between two bounced ones that nobody reported was delivered.
  q.add(1, 10'000, "d0", "ok");
  q.add(1, 10'000 + day, "d1", "ok");
  q.add(1, 10'000 + 2 * day, "d2", "ok");
  std::size_t n = q.ids.size();
  CHECK(soft(q.ids[n - 3], 20'000).soft_count == 1);
  CHECK(soft(q.ids[n - 1], 2 * day + 20'000).soft_count == 1);  // ids[n - 2] went through
  CHECK_FALSE(q.s.find_suppression("ok0@example.com", "customer-update"));
}

TEST_CASE("a campaign pauses itself at exactly its complaint rate, and a person resumes it") {
  FeedbackPolicy p;
  p.min_sample = 1000;
  Sent q(1000);
  NewMessage waiting{"nov", "customer-update", "waiting@example.com", "{}"};
  q.s.enqueue({&waiting, 1}, "test", 15'000);
  for (int i = 0; i < 2; ++i) {
    auto r =
        record_one(q.s, report({of_kind(q.ids[i], FeedbackKind::complaint, "abuse")}), 20'000, p);
    CHECK(r.applied.at(0).paused_campaign.empty());
    CHECK_FALSE(q.s.campaign("nov")->paused_at);
  }
  auto third =
      record_one(q.s, report({of_kind(q.ids[2], FeedbackKind::complaint, "abuse")}), 21'000, p);
  CHECK(third.applied.at(0).paused_campaign == "nov");
  CHECK(third.applied.at(0).pause_reason ==
        "complaint rate 0.30% (3 of 1000 answered) reached bounces.pause_complaint_rate 0.3%");
  auto c = q.s.campaign("nov");
  REQUIRE(c->paused_at);
  CHECK(*c->paused_at == 21'000);
  CHECK(c->pause_reason == third.applied.at(0).pause_reason);
  CHECK(counter(q.s, "auto-pause") == 1);
  // Its waiting message is not claimed while it is paused.
  CHECK(q.s.claim_due("test", 10, 22'000, 80'000).empty());

  // A person resumes it: the reason goes, and what came before no longer counts.
  CHECK(q.s.set_campaign_paused("nov", false, 23'000) == 1);
  c = q.s.campaign("nov");
  CHECK_FALSE(c->paused_at);
  CHECK(c->pause_reason.empty());
  CHECK(c->feedback.complaints == 3);
  CHECK(c->feedback_since_resume.complaints == 0);
  CHECK(c->feedback_since_resume.answered == 0);
  auto fourth =
      record_one(q.s, report({of_kind(q.ids[3], FeedbackKind::complaint, "abuse")}), 24'000, p);
  CHECK(fourth.applied.at(0).paused_campaign.empty());
  CHECK_FALSE(q.s.campaign("nov")->paused_at);
  // A late complaint about a message sent before the resume counts in the campaign's rates, not
  // in what the automatic pause judges now.
  c = q.s.campaign("nov");
  CHECK(c->feedback.complaints == 4);
  CHECK(c->feedback_since_resume.complaints == 0);
  CHECK(q.s.claim_due("test", 10, 25'000, 80'000).size() == 1);

  // Messages answered after the resume are judged on their own: 10 sent, then a complaint about
  // one of them trips the pause again (1 of 10 with a sample of 10 and a 10% line).
  p.min_sample = 10;
  p.pause_complaint_ppm = 100'000;
  q.add(10, 30'000, "nov", "after");
  c = q.s.campaign("nov");
  CHECK(c->feedback_since_resume.answered == 10);
  auto late =
      record_one(q.s, report({of_kind(q.ids[4], FeedbackKind::complaint, "abuse")}), 31'000, p);
  CHECK(late.applied.at(0).paused_campaign.empty());  // before the resume: not judged
  auto after =
      record_one(q.s, report({of_kind(q.ids.back(), FeedbackKind::complaint, "abuse")}), 32'000, p);
  CHECK(after.applied.at(0).paused_campaign == "nov");
  CHECK(after.applied.at(0).pause_reason.find("(1 of 10 answered)") != std::string::npos);
}

TEST_CASE("a refusal in the SMTP transaction counts in the campaign's rates") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  std::vector<NewMessage> batch = {{"nov", "customer-update", "dead@example.com", "{}"},
                                   {"nov", "customer-update", "blocked@example.com", "{}"}};
  s.enqueue(batch, "test", 1000);
  auto c = s.claim_due("test", 2, 2000, 60'000);
  REQUIRE(c.size() == 2);
  s.record_outcomes(
      std::vector<Outcome>{
          {c[0].id, MessageState::failed, 550, "550 5.1.1", 0, "", BounceClass::hard},
          {c[1].id, MessageState::failed, 554, "554 5.7.1", 0, "", BounceClass::policy}},
      3000);
  auto camp = s.campaign("nov");
  CHECK(camp->feedback.answered == 2);
  CHECK(camp->feedback.hard_bounces == 1);
  CHECK(camp->feedback.blocks == 1);
  CHECK(s.find_suppression("dead@example.com", "customer-update"));
  CHECK_FALSE(s.find_suppression("blocked@example.com", "customer-update"));
}

TEST_CASE("forgetting an address ends its soft-bounce run") {
  Sent q(1);
  record_one(q.s, report({of_kind(q.ids[0], FeedbackKind::soft_bounce, "4.2.2")}));
  q.s.forget("r0@example.com", "cli", 30'000);
  SQLite::Database db(q.path);
  CHECK(db.execAndGet("SELECT count(*) FROM soft_bounces").getInt() == 0);
}

TEST_CASE("blocks in the SMTP transaction pause a campaign once a feedback policy is set") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  std::vector<NewMessage> batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back({"nov", "customer-update", "b" + std::to_string(i) + "@example.com", "{}"});
  }
  s.enqueue(batch, "test", 1000);
  auto c = s.claim_due("test", 4, 2000, 60'000);
  REQUIRE(c.size() == 4);
  auto block = [&](std::size_t i) {
    return Outcome{c[i].id, MessageState::failed, 554, "554 5.7.1 blocked", 0,
                   "",      BounceClass::policy};
  };
  // Without a policy (bulkmailctl, a test): counted, nothing paused.
  CHECK(s.record_outcomes(std::vector<Outcome>{block(0)}, 3000).empty());
  FeedbackPolicy p;
  p.min_sample = 3;
  p.pause_block_ppm = 500'000;  // 50%
  s.set_feedback_policy(p);
  CHECK(s.record_outcomes(std::vector<Outcome>{{c[1].id, MessageState::sent, 250, "250 Ok", 0, "",
                                                BounceClass::unknown}},
                          3000)
            .empty());  // 1 block of 2 answered: under the sample
  auto paused = s.record_outcomes(std::vector<Outcome>{block(2)}, 3000);  // 2 of 3
  REQUIRE(paused.size() == 1);
  CHECK(paused[0].campaign == "nov");
  CHECK(paused[0].reason.find("block rate 66.66% (2 of 3 answered)") == 0);
  CHECK(s.campaign("nov")->paused_at);
}

TEST_CASE("a rate found under the sample pauses the campaign once enough messages are answered") {
  FeedbackPolicy p;
  p.min_sample = 10;
  p.pause_complaint_ppm = 100'000;  // 10%
  Sent q(5);
  NewMessage waiting{"nov", "customer-update", "waiting@example.com", "{}"};
  q.s.enqueue({&waiting, 1}, "test", 15'000);
  for (int i = 0; i < 2; ++i) {
    auto r =
        record_one(q.s, report({of_kind(q.ids[i], FeedbackKind::complaint, "abuse")}), 20'000, p);
    CHECK(r.applied.at(0).paused_campaign.empty());  // 2 of 5: under the sample
  }
  q.s.set_feedback_policy(p);
  CHECK(q.s.pause_tripped_campaigns(21'000).empty());  // still under it
  q.add(10, 22'000, "nov", "more");                    // 2 of 15 answered: 13.33%
  auto paused = q.s.pause_tripped_campaigns(23'000);
  REQUIRE(paused.size() == 1);
  CHECK(paused[0].campaign == "nov");
  CHECK(describe_pause(paused[0]) ==
        "campaign nov paused itself: complaint rate 13.33% (2 of 15 answered) reached "
        "bounces.pause_complaint_rate 10%; `bulkmailctl resume --campaign nov` sends it on");
  CHECK(q.s.campaign("nov")->paused_at);
  CHECK(q.s.pause_tripped_campaigns(24'000).empty());  // paused already
  q.s.set_feedback_policy(std::nullopt);
  CHECK(q.s.set_campaign_paused("nov", false, 25'000));
  CHECK(q.s.pause_tripped_campaigns(26'000).empty());  // no policy: pauses none
}

TEST_CASE("the digests of reports taken in go with the events retention deletes") {
  Sent q(1);
  ReceivedReport old = report({}, {"report:auto-reply"});
  record_one(q.s, old, 20'000);
  ReceivedReport recent = report({}, {"report:auto-reply"});
  record_one(q.s, recent, 90'000);
  q.s.prune(std::nullopt, 50'000, 100);
  // The old one is forgotten (it would count again); the recent one is still known.
  CHECK_FALSE(record_one(q.s, old, 100'000).duplicate);
  CHECK(record_one(q.s, recent, 100'000).duplicate);
}
