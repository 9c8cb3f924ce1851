#include "store/postgres/pg_copy.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store_helpers.h"
#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// Every suppression, as the store lists them.
std::vector<std::string> suppressions(Store& s) {
  std::vector<std::string> out;
  s.for_each_suppression([&](const Suppression& x) {
    out.push_back(x.address + "|" + x.category + "|" + std::string(to_string(x.reason)) + "|" +
                  x.source + "|" + std::to_string(x.created_at));
  });
  return out;
}

std::vector<std::string> history(Store& s, const std::string& address) {
  std::vector<std::string> out;
  for (const Event& e : s.history(address)) {
    out.push_back(std::to_string(e.id) + "|" + std::to_string(e.at) + "|" + e.type + "|" +
                  e.address + "|" + std::to_string(e.message.value_or(0)) + "|" + e.category + "|" +
                  e.campaign + "|" + e.source + "|" + e.detail);
  }
  return out;
}

}  // namespace

TEST_CASE("store copy: what SQLite holds, PostgreSQL holds, read through the same interface") {
  auto from = sqlite_database();
  auto sqlite = from->open();
  // Sent, bounced (a report by mail), deferred, failed, suppressed, cancelled, still queued.
  std::vector<MessageId> sent;
  add_sent(*sqlite, sent, 4, 10'000, "nov", "r");
  std::vector<ReceivedReport> reports(1);
  reports[0].digest = std::string(32, '\x7f');
  reports[0].counters = {"report:bounce", "class:hard"};
  reports[0].feedback = {{sent[0], FeedbackKind::hard_bounce, "5.1.1", "550 user unknown", "mx"}};
  sqlite->record_reports(reports, FeedbackPolicy{}, 11'000);
  for (const char* to : {"d@example.com", "f@example.com", "q@example.com", "c@example.com"}) {
    enqueue_one(*sqlite, msg(to, "dec"), 12'000);
  }
  auto claimed = sqlite->claim_due("test", 2, 13'000, 70'000);
  REQUIRE(claimed.size() == 2);
  std::vector<Outcome> outcomes = {
      {claimed[0].id, MessageState::deferred, 451, "451 try later", 99'000, "", {}},
      {claimed[1].id, MessageState::failed, 550, "550 5.1.1 unknown", 0, "", BounceClass::hard}};
  sqlite->record_outcomes(outcomes, 14'000);
  Suppression opt_out{"q@example.com", "", SuppressionReason::unsubscribe, "webhook", 15'000};
  sqlite->suppress({&opt_out, 1}, 15'000);
  sqlite->set_campaign_paused("dec", true, 16'000);
  sqlite->forget("r3@example.com", "test", 17'000);
  sqlite->set_dispatch_state({"paused", "the relay refused connections", 18'000, ""});
  std::string forgotten = sqlite->forgotten_key("r3@example.com");

  auto to = postgres_database();
  pg::Connection c(to->location());
  CopyCounts counts = copy_sqlite_to_postgres(from->location(), c);
  REQUIRE_FALSE(counts.empty());
  auto postgres = to->open();

  CHECK(postgres->counts(std::nullopt).by_state == sqlite->counts(std::nullopt).by_state);
  auto a = sqlite->campaigns();
  auto b = postgres->campaigns();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    CHECK(a[i].name == b[i].name);
    CHECK(a[i].paused_at == b[i].paused_at);
    CHECK(a[i].counts.by_state == b[i].counts.by_state);
    CHECK(a[i].feedback.hard_bounces == b[i].feedback.hard_bounces);
    CHECK(a[i].feedback.answered == b[i].feedback.answered);
  }
  CHECK(suppressions(*postgres) == suppressions(*sqlite));
  for (const char* address : {"r0@example.com", "q@example.com", "f@example.com", "r3@example.com",
                              "nobody@example.com"}) {
    CAPTURE(address);
    CHECK(history(*postgres, address) == history(*sqlite, address));
  }
  // The salt came along: the forgotten address's key, and its suppression, are the same.
  CHECK(postgres->forgotten_key("r3@example.com") == forgotten);
  CHECK(postgres->feedback_counters() == sqlite->feedback_counters());
  CHECK(postgres->last_event_id() == sqlite->last_event_id());
  REQUIRE(postgres->dispatch_state());
  CHECK(postgres->dispatch_state()->detail == "the relay refused connections");
  CHECK(postgres->find_message(sent[0])->state == MessageState::bounced);
  // A report taken in before is a duplicate after the move too.
  CHECK(postgres->record_reports(reports, FeedbackPolicy{}, 19'000)[0].duplicate);
  // New rows go on from where SQLite's ids were: never an id events still name.
  auto next = enqueue_one(*postgres, msg("new@example.com", "jan"), 20'000);
  CHECK(next.id > sqlite->find_message(sent[3])->id);
  CHECK(next.id > 8);
  CHECK(postgres->last_event_id() > sqlite->last_event_id());
}

TEST_CASE("store copy: a PostgreSQL database that holds data is refused, and left as it was") {
  auto from = sqlite_database();
  enqueue_one(*from->open(), msg("a@example.com"));
  auto to = postgres_database();
  enqueue_one(*to->open(), msg("b@example.com"));
  pg::Connection c(to->location());
  CHECK_THROWS_WITH_AS(copy_sqlite_to_postgres(from->location(), c),
                       doctest::Contains("is not empty (its campaigns table holds rows)"),
                       std::runtime_error);
  CHECK(to->scalar("SELECT count(*) FROM messages") == "1");
  CHECK(to->scalar("SELECT recipient FROM messages") == "b@example.com");
}
