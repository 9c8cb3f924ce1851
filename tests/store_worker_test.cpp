#include "store/store_worker.h"

#include <doctest/doctest.h>

#include <SQLiteCpp/Database.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "file_size_limit.h"
#include "store/sqlite/sqlite_store.h"
#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("a claim larger than one transaction's share comes back whole, once") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  {
    SqliteStore s(path);
    std::vector<NewMessage> batch;
    for (int i = 0; i < 250; ++i)
      batch.push_back({"", "customer-update", "u" + std::to_string(i) + "@example.com", "{}"});
    s.enqueue(batch, "test", 1000);
  }
  StoreWorker worker(std::make_unique<SqliteStore>(path), 1);
  std::promise<std::vector<ClaimedMessage>> first, second;
  worker.claim("me", 240, 60'000, [&](std::vector<ClaimedMessage> c) { first.set_value(c); });
  auto a = first.get_future().get();
  worker.claim("me", 240, 60'000, [&](std::vector<ClaimedMessage> c) { second.set_value(c); });
  auto b = second.get_future().get();
  CHECK(a.size() == 240);
  CHECK(b.size() == 10);
  std::set<MessageId> ids;
  for (const auto& m : a) ids.insert(m.id);
  for (const auto& m : b) ids.insert(m.id);
  CHECK(ids.size() == 250);
}

TEST_CASE("opt-outs are answered once committed, all of a group together") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  StoreWorker worker(std::make_unique<SqliteStore>(path), 1);
  std::vector<std::promise<bool>> done(20);
  for (int i = 0; i < 20; ++i) {
    worker.opt_out({"r" + std::to_string(i) + "@example.com", i % 2 ? "" : "customer-update",
                    SuppressionReason::unsubscribe, "one-click", 0},
                   [&done, i](bool ok) { done[static_cast<std::size_t>(i)].set_value(ok); });
  }
  for (auto& d : done) CHECK(d.get_future().get());
  SqliteStore check(path);
  CHECK(check.find_suppression("r3@example.com", "research-invitation")->source == "one-click");
  CHECK(check.find_suppression("r4@example.com", "customer-update"));
  CHECK_FALSE(check.find_suppression("r4@example.com", "research-invitation"));
}

namespace {

// A queue file holding one message, claimed (leased) as the daemon would have.
struct ClaimedQueue {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  MessageId id = claim_one(path);

  static MessageId claim_one(const std::string& path) {
    SqliteStore s(path);
    std::vector<NewMessage> m{{"", "customer-update", "pat@example.com", "{}"}};
    MessageId id = s.enqueue(m, "test", 1000)[0].id;
    REQUIRE(s.claim_due("me", 1, 2000, 60'000).size() == 1);
    return id;
  }
  std::unique_ptr<OutcomeJournal> journal() {
    auto j = OutcomeJournal::open(path);
    REQUIRE(j);
    return std::move(j.value());
  }
  std::int64_t count(MessageState state) { return SqliteStore(path).counts(std::nullopt)[state]; }
  bool journal_empty() { return !std::filesystem::exists(dir.path() / "q.db-outcomes.1"); }
};

bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

TEST_CASE("with a journal, an outcome is durable at once and committed within the interval") {
  ClaimedQueue q;
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, q.journal());
  // Let the worker fall asleep with nothing to do: the outcome must wake it to set a deadline.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(worker.record(
      {q.id, MessageState::sent, 250, "2.0.0 Ok", 0, "<x@example.com>", BounceClass::unknown}, 0,
      1));
  worker.wait_committed(0, 1);  // returns at once: the journal holds it
  CHECK(eventually([&] { return q.count(MessageState::sent) == 1; }));
  // Once committed, the journal's copy is removed.
  CHECK(eventually([&] { return q.journal_empty(); }));
}

TEST_CASE("without a journal, an outcome is durable only once committed") {
  ClaimedQueue q;
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1);
  CHECK_FALSE(worker.record(
      {q.id, MessageState::sent, 250, "2.0.0 Ok", 0, "<x@example.com>", BounceClass::unknown}, 0,
      1));
  worker.wait_committed(0, 1);
  CHECK(q.count(MessageState::sent) == 1);
}

TEST_CASE("outcomes still journaled when the worker stops are committed before it ends") {
  ClaimedQueue q;
  {
    StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, q.journal());
    CHECK(worker.record(
        {q.id, MessageState::failed, 554, "5.7.1 refused", 0, "", BounceClass::unknown}, 0, 1));
  }
  CHECK(q.count(MessageState::failed) == 1);
  CHECK(q.journal_empty());
}

TEST_CASE("a release takes no sender's place: a worker no sender reports to commits it") {
  ClaimedQueue q;
  // The dispatcher hands a claimed message back undelivered; nobody waits for that.
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 0, q.journal());
  worker.release(
      {q.id, MessageState::queued, 0, "shutting down", now_millis(), "", BounceClass::unknown});
  CHECK(eventually([&] { return q.count(MessageState::queued) == 1; }));
  CHECK(eventually([&] { return q.journal_empty(); }));
}

TEST_CASE("a worker sized by its senders alone takes releases beside their outcomes") {
  ClaimedQueue q;
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1);  // one sender, no journal
  worker.release(
      {q.id + 1000, MessageState::queued, 0, "shutting down", 0, "", BounceClass::unknown});
  CHECK_FALSE(worker.record(
      {q.id, MessageState::sent, 250, "2.0.0 Ok", 0, "", BounceClass::unknown}, 0, 1));
  worker.wait_committed(0, 1);
  CHECK(q.count(MessageState::sent) == 1);
}

TEST_CASE("a sender out of range is a bug, refused at the call with nothing recorded") {
  ClaimedQueue q;
  {
    StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, q.journal());
    Outcome sent{q.id, MessageState::sent, 250, "2.0.0 Ok", 0, "", BounceClass::unknown};
    CHECK_THROWS_AS(worker.record(sent, 1, 1), std::out_of_range);  // no spare place
    CHECK_THROWS_AS(worker.record(sent, -1, 1), std::out_of_range);
    CHECK_THROWS_AS(worker.record(sent, 0, 0), std::out_of_range);  // outcomes count from 1
    CHECK_THROWS_AS(worker.wait_committed(1, 1), std::out_of_range);
  }
  CHECK(q.count(MessageState::sent) == 0);
  CHECK(q.count(MessageState::sending) == 1);
  CHECK(q.journal_empty());
}

TEST_CASE("the watch has an opt-out before the recipient is told it worked") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  SuppressionWatch watch;
  watch.set_horizon(SuppressionWatch::Clock::now());  // a message claimed a moment ago
  StoreWorker worker(std::make_unique<SqliteStore>(path), 1, nullptr, &watch);
  std::promise<bool> seen;
  worker.opt_out(
      {"pat@example.com", "customer-update", SuppressionReason::unsubscribe, "one-click", 0},
      [&](bool ok) {
        seen.set_value(ok &&
                       watch.find("pat@example.com", "customer-update").suppression.has_value());
      });
  CHECK(seen.get_future().get());
}

TEST_CASE("suppressions another process adds reach the watch while claimed messages wait") {
  ClaimedQueue q;  // a message claimed before the suppression below
  SuppressionWatch watch;
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, nullptr, &watch);
  {
    // The dispatcher tells the watch a claim is under way; that starts the polling.
    watch.set_horizon(SuppressionWatch::Clock::now());
    SqliteStore s(q.path);
    std::vector<NewMessage> m{{"", "customer-update", "sam@example.com", "{}"}};
    s.enqueue(m, "test", 1000);
  }
  std::promise<std::size_t> claimed;
  worker.claim("me", 10, 60'000,
               [&](std::vector<ClaimedMessage> c) { claimed.set_value(c.size()); });
  REQUIRE(claimed.get_future().get() == 1);
  CHECK_FALSE(watch.find("sam@example.com", "customer-update").suppression);
  SqliteStore cli(q.path);
  Suppression s{"sam@example.com", "", SuppressionReason::manual, "cli", 0};
  cli.suppress({&s, 1}, 5000);
  CHECK(eventually([&] { return watch.find("sam@example.com", "x").suppression.has_value(); }));
  cli.unsuppress("sam@example.com", "", "cli", 6000, /*consent_given=*/true);
  CHECK(eventually([&] { return !watch.find("sam@example.com", "x").suppression.has_value(); }));
}

TEST_CASE("without a claimed message waiting, the event log is not polled") {
  ClaimedQueue q;
  SuppressionWatch watch;  // no horizon: nothing claimed may still be delivered
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, nullptr, &watch);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the worker reads the log's end
  SqliteStore cli(q.path);
  Suppression s{"sam@example.com", "", SuppressionReason::manual, "cli", 0};
  cli.suppress({&s, 1}, 5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_FALSE(watch.find("sam@example.com", "x").suppression);
  // A claim asked for: from then on changes arrive.
  watch.set_horizon(SuppressionWatch::Clock::now());
  std::promise<void> ran;
  worker.run([&](Store&) { ran.set_value(); });  // as the claim that follows would
  ran.get_future().get();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past its refresh after a write
  Suppression t{"tam@example.com", "", SuppressionReason::manual, "cli", 0};
  cli.suppress({&t, 1}, 6000);
  CHECK(eventually([&] { return watch.find("tam@example.com", "x").suppression.has_value(); }));
}

TEST_CASE("an opt-out waits for the delivery under way to its recipient, at most kHoldLimit") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  SuppressionWatch watch;
  StoreWorker worker(std::make_unique<SqliteStore>(path), 2, nullptr, &watch);
  REQUIRE_FALSE(watch.look_and_hold(0, "pat@example.com", "customer-update").suppression);
  auto asked = std::chrono::steady_clock::now();
  std::promise<bool> answered;
  auto answer = answered.get_future();
  worker.opt_out({"pat@example.com", "", SuppressionReason::unsubscribe, "one-click", 0},
                 [&](bool ok) { answered.set_value(ok); });
  // New deliveries to the person stop at once, before the opt-out is committed.
  CHECK(eventually([&] { return watch.find("pat@example.com", "x").suppression.has_value(); }));
  CHECK(watch.look_and_hold(1, "pat@example.com", "customer-update").suppression);
  SUBCASE("the delivery ends: the opt-out follows at once") {
    CHECK(answer.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
    watch.end_hold(0);
    REQUIRE(answer.wait_for(std::chrono::milliseconds(500)) == std::future_status::ready);
    CHECK(answer.get());
  }
  SUBCASE("the delivery goes on: the opt-out is answered after the limit anyway") {
    REQUIRE(answer.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    CHECK(answer.get());
    CHECK(std::chrono::steady_clock::now() - asked >= StoreWorker::kHoldLimit);
    watch.end_hold(0);
  }
  CHECK(SqliteStore(path).find_suppression("pat@example.com", "customer-update"));
}

TEST_CASE(
    "after an outcome the journal could not take, the rest of its group wait for the commit") {
  ClaimedQueue q;
  // Segment 1 cannot be created (a folder holds its name): the first append fails, and the
  // journal is not tried again until the group is taken for its commit.
  auto journal = q.journal();
  std::filesystem::create_directory(q.dir.path() / "q.db-outcomes.1");
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, std::move(journal));
  std::promise<void> busy;
  worker.run([&](Store&) {
    busy.set_value();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the commit has to wait
  });
  busy.get_future().get();
  CHECK_FALSE(worker.record(
      {q.id, MessageState::sent, 250, "2.0.0 Ok", 0, "", BounceClass::unknown}, 0, 1));
  CHECK_FALSE(worker.record(
      {q.id + 1000, MessageState::sent, 250, "2.0.0 Ok", 0, "", BounceClass::unknown}, 0, 2));
  // Waiting for the second is waiting for the commit of both.
  worker.wait_committed(0, 2);
  CHECK(q.count(MessageState::sent) == 1);
  CHECK_FALSE(std::filesystem::exists(q.dir.path() / "q.db-outcomes.2"));
}

TEST_CASE("after a write failed, a claim that found nothing does not say the database is back") {
  // A full disk: writes fail, but a claim with nothing due writes nothing and commits.
  ClaimedQueue q;  // its one message is leased: nothing is due
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1);
  std::mutex mu;
  std::vector<std::string> said;  // each health report's trouble ("": back)
  worker.on_health([&](const std::string& trouble, std::chrono::milliseconds) {
    std::lock_guard lock(mu);
    said.push_back(trouble);
  });
  auto opt_out = [&](const std::string& who) {
    std::promise<bool> answered;
    worker.opt_out({who, "", SuppressionReason::unsubscribe, "one-click", 0},
                   [&](bool ok) { answered.set_value(ok); });
    return answered.get_future().get();
  };
  auto claim = [&] {
    std::promise<std::size_t> got;
    worker.claim("me", 10, 60'000, [&](std::vector<ClaimedMessage> m) { got.set_value(m.size()); });
    return got.get_future().get();
  };
  {
    FileSizeLimit full(0);  // no write to any file works
    CHECK_FALSE(opt_out("pat@example.com"));
    CHECK(claim() == 0);
  }
  {
    std::lock_guard lock(mu);
    REQUIRE(said.size() == 1);
    CHECK(said[0].find("recording opt-outs failed") == 0);
  }
  // Space is back: the next write says so.
  CHECK(opt_out("pat@example.com"));
  std::lock_guard lock(mu);
  REQUIRE(said.size() == 2);
  CHECK(said[1].empty());
}

TEST_CASE("a stopping worker gives up on a database that keeps failing instead of hanging") {
  ClaimedQueue q;
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, q.journal());
  {
    // The database breaks under the worker: every commit of outcomes fails from now on.
    SQLite::Database db(q.path, SQLite::OPEN_READWRITE);
    db.exec("ALTER TABLE messages RENAME TO messages_gone");
  }
  CHECK(worker.record({q.id, MessageState::sent, 250, "2.0.0 Ok", 0, "", BounceClass::unknown}, 0,
                      1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // it is failing and retrying
  auto asked = std::chrono::steady_clock::now();
  worker.stop();
  CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(5));
  // The outcome stays in the journal, for the next start to record.
  CHECK_FALSE(q.journal_empty());
}

TEST_CASE("opt-outs past the queue's bound are told to try again at once") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  StoreWorker worker(std::make_unique<SqliteStore>(path), 1);
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> busy;
  worker.run([&](Store&) {
    busy.set_value();
    released.wait();  // the database is not answering
  });
  busy.get_future().get();
  std::atomic<int> refused{0}, recorded{0};
  for (std::size_t i = 0; i <= StoreWorker::kMaxQueued; ++i) {
    worker.opt_out({"p" + std::to_string(i) + "@example.com", "", SuppressionReason::unsubscribe,
                    "one-click", 0},
                   [&](bool ok) { ++(ok ? recorded : refused); });
  }
  CHECK(refused == 1);  // the one past the bound, answered before the database came back
  release.set_value();
  worker.stop();
  CHECK(recorded == static_cast<int>(StoreWorker::kMaxQueued));
}

TEST_CASE("the database stopping and answering again are told once each, however long it fails") {
  ClaimedQueue q;
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1);
  std::mutex mu;
  std::vector<std::pair<std::string, std::chrono::milliseconds>> told;
  worker.on_health([&](const std::string& trouble, std::chrono::milliseconds away) {
    std::lock_guard lock(mu);
    told.emplace_back(trouble, away);
  });
  SQLite::Database db(q.path, SQLite::OPEN_READWRITE);
  db.exec("ALTER TABLE messages RENAME TO messages_gone");
  // Not journaled: the sender waits for the commit, which keeps failing and being retried.
  CHECK_FALSE(worker.record(
      {q.id, MessageState::sent, 250, "2.0.0 Ok", 0, "", BounceClass::unknown}, 0, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  {
    std::lock_guard lock(mu);
    REQUIRE(told.size() == 1);
    CHECK(told[0].first.find("recording outcomes failed") == 0);
  }
  db.exec("ALTER TABLE messages_gone RENAME TO messages");
  worker.wait_committed(0, 1);  // the retry commits it
  std::lock_guard lock(mu);
  REQUIRE(told.size() == 2);
  CHECK(told[1].first.empty());
  CHECK(told[1].second >= std::chrono::milliseconds(250));
}

TEST_CASE("a poke reads the event log at once, without waiting for the poll") {
  ClaimedQueue q;
  SuppressionWatch watch;
  StoreWorker worker(std::make_unique<SqliteStore>(q.path), 1, nullptr, &watch);
  // As with LISTEN up: the poll is only the fallback (a minute here, so that it cannot be what
  // finds the change below).
  worker.set_changes_announced(true, std::chrono::minutes(1));
  watch.set_horizon(SuppressionWatch::Clock::now());
  std::promise<void> ran;
  worker.run([&](Store&) { ran.set_value(); });
  ran.get_future().get();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past its refresh after a write
  SqliteStore cli(q.path);
  Suppression s{"sam@example.com", "", SuppressionReason::manual, "cli", 0};
  cli.suppress({&s, 1}, 5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_FALSE(watch.find("sam@example.com", "x").suppression);  // not polled yet
  worker.poke_watch();                                          // another daemon's NOTIFY
  CHECK(eventually([&] { return watch.find("sam@example.com", "x").suppression.has_value(); }));
}

TEST_CASE("a group commit waits for its outcomes, or for its window, and no longer") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  std::vector<MessageId> ids;
  {
    SqliteStore s(path);
    std::vector<NewMessage> m;
    for (int i = 0; i < 3; ++i)
      m.push_back({"", "customer-update", "p" + std::to_string(i) + "@example.com", "{}"});
    for (const auto& e : s.enqueue(m, "test", 1000)) ids.push_back(e.id);
    REQUIRE(s.claim_due("me", 3, 2000, 60'000).size() == 3);
  }
  auto sent = [&](std::size_t i) {
    return Outcome{ids[i], MessageState::sent, 250, "2.0.0 Ok", 0, "", BounceClass::unknown};
  };
  auto count_sent = [&] { return SqliteStore(path).counts(std::nullopt)[MessageState::sent]; };
  StoreWorker worker(std::make_unique<SqliteStore>(path), 3);
  SUBCASE("a group of two: the first waits for the second") {
    worker.set_group_commit({2, std::chrono::seconds(30)});
    CHECK_FALSE(worker.record(sent(0), 0, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK(count_sent() == 0);  // alone, well within its window: not yet
    CHECK_FALSE(worker.record(sent(1), 1, 1));
    auto completed = std::chrono::steady_clock::now();
    worker.wait_committed(0, 1);
    worker.wait_committed(1, 1);
    CHECK(count_sent() == 2);
    // At the second outcome, not at the end of the 30 s window: the group woke the worker.
    CHECK(std::chrono::steady_clock::now() - completed < std::chrono::seconds(10));
  }
  SUBCASE("the window ends a group that stays short, not sooner") {
    worker.set_group_commit({3, std::chrono::milliseconds(300)});
    auto recorded = std::chrono::steady_clock::now();
    CHECK_FALSE(worker.record(sent(0), 0, 1));
    worker.wait_committed(0, 1);
    auto waited = std::chrono::steady_clock::now() - recorded;
    CHECK(count_sent() == 1);
    CHECK(waited >= std::chrono::milliseconds(290));  // it waited for the window...
    CHECK(waited < std::chrono::seconds(10));         // ...and not for the stop
  }
  SUBCASE("a stopping worker commits a short group at once") {
    worker.set_group_commit({3, std::chrono::seconds(30)});
    CHECK_FALSE(worker.record(sent(2), 2, 1));
    auto started = std::chrono::steady_clock::now();
    worker.stop();
    CHECK(count_sent() == 1);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(20));
  }
}
