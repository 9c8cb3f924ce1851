#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/sqlite_schema.h"

#include <sys/stat.h>

#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

NewMessage msg(const std::string& to, const std::string& campaign = "c1",
               const std::string& category = "customer-update") {
  return NewMessage{campaign, category, to, "{}"};
}

EnqueueResult enqueue_one(Store& s, const NewMessage& m, UnixMillis now = 1000) {
  return s.enqueue({&m, 1}, "test", now).front();
}

std::string state_of(const std::string& db_path, MessageId id) {
  SQLite::Database db(db_path);
  SQLite::Statement st(db, "SELECT state FROM messages WHERE id = ?");
  st.bind(1, static_cast<int64_t>(id));
  REQUIRE(st.executeStep());
  return st.getColumn(0).getString();
}

}  // namespace

TEST_CASE("a new database is created in WAL mode at the current schema version") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore store(path);
  SQLite::Database db(path);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == SqliteStore::schema_version());
  CHECK(SqliteStore::schema_version() == 5);
  SqliteStore again(path);  // reopening migrates nothing and loses nothing
  CHECK(again.counts(std::nullopt)[MessageState::queued] == 0);
}

TEST_CASE("a database from a newer bulkmail, or another program's file, is refused") {
  TempDir dir;
  auto newer = (dir / "newer.db").string();
  {
    SQLite::Database db(newer, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = 999");
  }
  CHECK_THROWS_WITH_AS(SqliteStore{newer}, doctest::Contains("newer than this bulkmail"),
                       std::runtime_error);
  auto foreign = (dir / "foreign.db").string();
  {
    SQLite::Database db(foreign, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE t (x)");
  }
  CHECK_THROWS_WITH_AS(SqliteStore{foreign}, doctest::Contains("not a bulkmail database"),
                       std::runtime_error);
}

TEST_CASE("an address is queued at most once per campaign") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  auto first = enqueue_one(s, msg("a@example.com"));
  CHECK(first.status == EnqueueStatus::queued);
  CHECK(first.id > 0);
  CHECK(enqueue_one(s, msg("a@example.com")).status == EnqueueStatus::already_queued);
  CHECK(enqueue_one(s, msg("a@example.com", "c2")).status == EnqueueStatus::queued);
  // Outside a campaign there is no duplicate check: each enqueue is a message of its own.
  CHECK(enqueue_one(s, msg("a@example.com", "")).status == EnqueueStatus::queued);
  CHECK(enqueue_one(s, msg("a@example.com", "")).status == EnqueueStatus::queued);
  CHECK(s.counts(std::nullopt)[MessageState::queued] == 4);
  CHECK(s.counts(std::string("c1"))[MessageState::queued] == 1);
}

TEST_CASE("suppression scopes: one category, or all mail") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  Suppression cat{"cat@example.com", "research-invitation", SuppressionReason::unsubscribe, "test",
                  0};
  Suppression all{"all@example.com", "", SuppressionReason::hard_bounce, "test", 0};
  using O = SuppressOutcome;
  CHECK(s.suppress(std::vector{cat, all}, 5) == std::vector{O::added, O::added});
  // The same request again changes nothing: the first record stays, the request is noted.
  CHECK(s.suppress(std::vector{cat}, 6) == std::vector{O::recorded});

  CHECK(enqueue_one(s, msg("cat@example.com", "c1", "research-invitation")).status ==
        EnqueueStatus::suppressed);
  CHECK(enqueue_one(s, msg("cat@example.com", "c1", "customer-update")).status ==
        EnqueueStatus::already_queued);
  CHECK(enqueue_one(s, msg("cat@example.com", "c2", "customer-update")).status ==
        EnqueueStatus::queued);
  CHECK(enqueue_one(s, msg("all@example.com", "c1", "customer-update")).status ==
        EnqueueStatus::suppressed);
  CHECK(enqueue_one(s, msg("all@example.com", "c1", "research-invitation")).status ==
        EnqueueStatus::already_queued);

  auto found = s.find_suppression("cat@example.com", "research-invitation");
  REQUIRE(found);
  CHECK(found->created_at == 5);
  CHECK_FALSE(s.find_suppression("cat@example.com", "customer-update"));
  CHECK(s.find_suppression("all@example.com", "anything")->reason ==
        SuppressionReason::hard_bounce);

  auto removed = s.unsuppress("all@example.com", "", "test", 7, false);
  REQUIRE(removed.status == LiftStatus::lifted);
  CHECK(removed.suppression->reason == SuppressionReason::hard_bounce);
  CHECK(s.unsuppress("all@example.com", "", "test", 8, false).status == LiftStatus::not_found);
  CHECK(enqueue_one(s, msg("all@example.com", "c3")).status == EnqueueStatus::queued);
}

TEST_CASE("claim, lease and outcomes") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  std::vector<NewMessage> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(msg("u" + std::to_string(i) + "@example.com"));
  auto ids = s.enqueue(batch, "test", 100);

  auto claimed = s.claim_due("owner-1", 3, 200, 60200);
  REQUIRE(claimed.size() == 3);
  CHECK(claimed[0].id == ids[0].id);
  CHECK(claimed[0].attempts == 1);
  CHECK(s.counts(std::nullopt)[MessageState::sending] == 3);
  // Leased messages are not claimed twice.
  CHECK(s.claim_due("owner-2", 10, 200, 60200).size() == 2);

  std::vector<Outcome> outcomes = {
      {claimed[0].id, MessageState::sent, 250, "2.0.0 Ok: queued", 0, "<m1@mail.example.com>",
       BounceClass::unknown},
      {claimed[1].id, MessageState::deferred, 451, "4.3.0 try later", 5000, "",
       BounceClass::unknown},
      {claimed[2].id, MessageState::failed, 550, "5.1.1 user unknown", 0, "", BounceClass::hard},
  };
  s.record_outcomes(outcomes, 300);
  CHECK(state_of(path, claimed[0].id) == "sent");
  CHECK(state_of(path, claimed[1].id) == "deferred");
  CHECK(state_of(path, claimed[2].id) == "failed");
  // The hard bounce suppressed the address for all mail.
  auto sup = s.find_suppression("u2@example.com", "research-invitation");
  REQUIRE(sup);
  CHECK(sup->reason == SuppressionReason::hard_bounce);
  // Each outcome is in the recipient's history, with the message's names and the relay's reply.
  auto sent = s.history("u0@example.com");
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].type == "sent");
  CHECK(sent[1].message == claimed[0].id);
  CHECK(sent[1].category == "customer-update");
  CHECK(sent[1].campaign == "c1");
  CHECK(sent[1].source == "dispatcher");
  CHECK(sent[1].detail == "250 2.0.0 Ok: queued");
  auto bounced = s.history("u2@example.com");
  REQUIRE(bounced.size() == 3);
  CHECK(bounced[1].type == "failed");
  CHECK(bounced[1].detail == "550 5.1.1 user unknown");
  CHECK(bounced[2].type == "suppression-added");
  CHECK(bounced[2].category == "");
  CHECK(bounced[2].campaign == "c1");
  CHECK(bounced[2].detail == "hard-bounce (all mail): 550 5.1.1 user unknown");
  // Recording again changes nothing: the message is no longer `sending`.
  s.record_outcomes(std::vector<Outcome>{{claimed[0].id, MessageState::failed, 554, "x", 0, "",
                                          BounceClass::unknown}},
                    301);
  CHECK(state_of(path, claimed[0].id) == "sent");

  // The deferred message comes due at its next attempt time, with its attempt counted.
  CHECK(s.claim_due("owner-1", 10, 4999, 70000).empty());
  auto again = s.claim_due("owner-1", 10, 5000, 70000);
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempts == 2);
}

TEST_CASE("a suppression added while a message waits wins at claim time") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  auto r = enqueue_one(s, msg("late@example.com", "c1", "research-invitation"));
  // In the same claim: the same address in another category, and an all-mail opt-out.
  auto other_category = enqueue_one(s, msg("late@example.com", "c2", "customer-update"));
  auto neighbour = enqueue_one(s, msg("next@example.com", "c1", "research-invitation"));
  auto all_mail = enqueue_one(s, msg("gone@example.com", "c1", "customer-update"));
  Suppression sups[] = {
      {"late@example.com", "research-invitation", SuppressionReason::unsubscribe, "one-click", 0},
      {"gone@example.com", "", SuppressionReason::manual, "test", 0}};
  s.suppress(sups, 1500);
  auto claimed = s.claim_due("o", 10, 2000, 9000);
  REQUIRE(claimed.size() == 2);
  CHECK(claimed[0].id == other_category.id);
  CHECK(claimed[1].id == neighbour.id);
  CHECK(state_of(path, r.id) == "suppressed");
  CHECK(state_of(path, all_mail.id) == "suppressed");
  auto h = s.history("late@example.com");
  REQUIRE(h.size() == 4);
  CHECK(h[0].type == "enqueued");
  CHECK(h[1].type == "enqueued");
  CHECK(h[2].type == "suppression-added");
  CHECK(h[3].type == "suppressed");
  CHECK(h[3].message == r.id);
  CHECK(h[3].detail == "recipient suppressed (unsubscribe)");
  CHECK(s.history("gone@example.com").back().detail == "recipient suppressed (manual, all mail)");
}

TEST_CASE("the claim looks each recipient up by the suppressions' key, never scanning them") {
  // Scanning would cost every claim a pass over the whole suppression list per message: with
  // 20,000 one-click opt-outs arriving, claims held the writer long enough to push the opt-outs'
  // p99 from 8 ms to 90 ms.
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  SQLite::Database db(path);
  SQLite::Statement plan(db, std::string("EXPLAIN QUERY PLAN ") + kSqliteClaim);
  std::vector<std::string> steps;
  while (plan.executeStep()) steps.push_back(plan.getColumn(3).getString());
  CAPTURE(steps);
  bool keyed = false;
  for (const auto& step : steps) {
    CHECK(step.find("SCAN s") == std::string::npos);
    if (step.find("SEARCH s USING PRIMARY KEY (address=?") != std::string::npos) keyed = true;
  }
  CHECK(keyed);
}

TEST_CASE(
    "expired leases return to the queue as possible duplicates - released ones keep attempts") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com")};
  s.enqueue(batch, "test", 0);
  auto claimed = s.claim_due("dead-daemon", 10, 10, 1000);
  REQUIRE(claimed.size() == 2);
  CHECK(s.recover_leases(999, 999, std::nullopt).possible_duplicates.empty());
  s.record_outcomes(std::vector<Outcome>{{claimed[1].id, MessageState::queued, 0, "shutting down",
                                          0, "", BounceClass::unknown}},
                    500);
  auto recovered = s.recover_leases(1000, 1000, std::nullopt);
  REQUIRE(recovered.possible_duplicates.size() == 1);
  CHECK(recovered.possible_duplicates[0] == claimed[0].id);
  CHECK(s.history("a@example.com").back().type == "lease-expired");
  auto next = s.claim_due("new-daemon", 10, 1001, 2000);
  REQUIRE(next.size() == 2);
  for (const auto& m : next) CHECK(m.attempts == (m.id == claimed[0].id ? 2 : 1));
}

TEST_CASE("cancel and retry a campaign") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com"), msg("c@example.com"),
                                   msg("d@example.com", "other")};
  s.enqueue(batch, "test", 0);
  auto claimed = s.claim_due("o", 1, 1, 100);
  s.record_outcomes(std::vector<Outcome>{{claimed[0].id, MessageState::failed, 554, "refused", 0,
                                          "", BounceClass::unknown}},
                    2);
  CHECK(s.retry_campaign("c1", "test", 3) == 1);
  CHECK(s.history(claimed[0].recipient).back().type == "requeued");
  CHECK(s.counts(std::string("c1"))[MessageState::queued] == 3);
  CHECK(s.cancel_campaign("c1", "test", 4) == 3);
  CHECK(s.counts(std::string("c1"))[MessageState::cancelled] == 3);
  CHECK(s.counts(std::string("other"))[MessageState::queued] == 1);
  CHECK(s.cancel_campaign("nope", "test", 5) == 0);
}

TEST_CASE("events are never changed, and a suppression's evidence is never deleted") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  enqueue_one(s, msg("a@example.com"));
  Suppression sup{"b@example.com", "", SuppressionReason::unsubscribe, "one-click", 0};
  s.suppress({&sup, 1}, 2000);
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  CHECK_THROWS_WITH(db.exec("UPDATE events SET type = 'x'"), doctest::Contains("append-only"));
  // Whoever deletes, by whatever statement: the schema keeps the evidence of a suppression in
  // force.
  CHECK_THROWS_WITH(db.exec("DELETE FROM events"), doctest::Contains("evidence"));
  CHECK(db.execAndGet("SELECT count(*) FROM events").getInt() == 2);
  CHECK(db.exec("DELETE FROM events WHERE address = 'a@example.com'") == 1);
}

TEST_CASE("the schema's evidence trigger names exactly the evidence event types the code knows") {
  // The trigger is in a shipped migration, which is never edited: this keeps the two from
  // drifting apart.
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore store(path);
  SQLite::Database db(path);
  std::string sql = db.execAndGet(
                          "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND "
                          "name = 'events_keep_evidence'")
                        .getString();
  auto list_start = sql.find("OLD.type IN (");
  REQUIRE(list_start != std::string::npos);
  auto list_end = sql.find(')', list_start);
  REQUIRE(list_end != std::string::npos);
  std::set<std::string> in_trigger;
  for (auto quote = sql.find('\'', list_start); quote < list_end;
       quote = sql.find('\'', quote + 1)) {
    auto end = sql.find('\'', quote + 1);
    REQUIRE(end < list_end);
    in_trigger.insert(sql.substr(quote + 1, end - quote - 1));
    quote = end;
  }
  std::set<std::string> in_code;
  for (std::string_view type : kSuppressionEvidenceEvents) in_code.emplace(type);
  CHECK(in_code.size() == kSuppressionEvidenceEvents.size());  // no type listed twice
  CHECK(in_trigger == in_code);
  for (std::string_view type : kSuppressionEvidenceEvents) CHECK(is_suppression_evidence(type));
  CHECK_FALSE(is_suppression_evidence("enqueued"));
  CHECK_FALSE(is_suppression_evidence("suppressed"));
}

TEST_CASE("dispatch state and sent counts") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  CHECK_FALSE(s.dispatch_state());
  s.set_dispatch_state({"paused", "relay down", 5, ""});
  s.set_dispatch_state({"running", "", 6, ""});
  auto d = s.dispatch_state();
  REQUIRE(d);
  CHECK(d->state == "running");
  CHECK(d->updated_at == 6);
  CHECK(d->config_problem.empty());
  // A failed reload's problem stays through the dispatcher's own changes until it is cleared.
  s.set_config_problem("the config file is invalid (x)");
  s.set_dispatch_state({"paused", "daily limit reached", 7, ""});
  CHECK(s.dispatch_state()->config_problem == "the config file is invalid (x)");
  CHECK(s.dispatch_state()->state == "paused");
  s.set_config_problem("");
  CHECK(s.dispatch_state()->config_problem.empty());
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com")};
  s.enqueue(batch, "t", 0);
  auto c = s.claim_due("o", 10, 1, 100);
  s.record_outcomes(
      std::vector<Outcome>{
          {c[0].id, MessageState::sent, 250, "ok", 0, "", BounceClass::unknown},
          {c[1].id, MessageState::deferred, 451, "later", 50, "", BounceClass::unknown}},
      20);
  CHECK(s.count_sent_since(20) == 1);
  CHECK(s.count_sent_since(21) == 0);
}

TEST_CASE("a version 1 database migrates forward and keeps its rows") {
  TempDir dir;
  auto path = (dir / "v1.db").string();
  {
    // The schema as the first release wrote it, and a message and an event in it.
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    migrate_sqlite_schema(db, 1);
    db.exec(
        "INSERT INTO messages (campaign, category, recipient, state, next_attempt_at, "
        "created_at, updated_at) VALUES ('c1', 'customer-update', 'keep@example.com', 'queued', "
        "1000, 1000, 1000); INSERT INTO events (at, type, address, message) VALUES (1000, "
        "'enqueued', 'keep@example.com', 1)");
  }
  SqliteStore s(path);
  SQLite::Database db(path);
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == SqliteStore::schema_version());
  // Version 4 made ids never repeat, starting past every id an event names.
  CHECK(db.execAndGet("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").getInt() >= 1);
  // Version 3 made a campaign of every name its messages held, created with its first message.
  auto c1 = s.campaign("c1");
  REQUIRE(c1);
  CHECK(c1->created_at == 1000);
  CHECK(c1->origin == "");
  CHECK(c1->counts[MessageState::queued] == 1);
  CHECK(s.counts(std::nullopt)[MessageState::queued] == 1);
  s.set_dispatch_state({"running", "", 1, ""});
  CHECK(s.dispatch_state()->state == "running");
}

TEST_CASE("a lookup leaves no read open: the same connection can write after another one did") {
  // The daemon's writer answers API lookups between its writes, while the CLI and other
  // connections commit in between.
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  SqliteStore writer(path), other(path);
  Suppression a{"a@example.com", "", SuppressionReason::manual, "test", 0};
  Suppression b{"b@example.com", "", SuppressionReason::manual, "test", 0};
  writer.suppress({&a, 1}, 1);
  REQUIRE(writer.find_suppression("a@example.com", "customer-update"));
  other.suppress({&b, 1}, 2);
  Suppression c{"c@example.com", "", SuppressionReason::manual, "test", 0};
  CHECK(writer.suppress({&c, 1}, 3) == std::vector{SuppressOutcome::added});
  CHECK(writer.find_suppression("b@example.com", "customer-update"));  // sees the other's commit
}

TEST_CASE("suppression changes since an event, in order, from every writer") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  CHECK(s.last_event_id() == 0);
  enqueue_one(s, msg("a@example.com"));
  std::int64_t start = s.last_event_id();
  CHECK(start > 0);
  CHECK(s.suppression_changes(start).changes.empty());
  CHECK(s.suppression_changes(start).last == start);

  SqliteStore other(path);  // bulkmailctl, say
  Suppression one{"pat@example.com", "research-invitation", SuppressionReason::unsubscribe, "cli",
                  0};
  Suppression all{"sam@example.com", "", SuppressionReason::complaint, "cli", 0};
  other.suppress(std::vector<Suppression>{one, all}, 2000);
  enqueue_one(other, msg("b@example.com"));  // a later event that is not a suppression
  other.unsuppress("pat@example.com", "research-invitation", "cli", 3000, true);

  auto c = s.suppression_changes(start);
  REQUIRE(c.changes.size() == 3);
  CHECK(c.changes[0].added);
  CHECK(c.changes[0].suppression.address == "pat@example.com");
  CHECK(c.changes[0].suppression.category == "research-invitation");
  CHECK(c.changes[1].added);
  CHECK(c.changes[1].suppression.category.empty());
  CHECK(c.changes[1].suppression.reason == SuppressionReason::complaint);
  CHECK(c.changes[1].suppression.source == "cli");
  CHECK_FALSE(c.changes[2].added);
  CHECK(c.changes[2].suppression.address == "pat@example.com");
  CHECK(c.last == s.last_event_id());
  // Looking again from where the last look ended finds nothing new.
  CHECK(s.suppression_changes(c.last).changes.empty());
  CHECK(s.suppression_changes(c.last).last == c.last);
}

TEST_CASE("after a crash, only messages whose delivery had begun are possible duplicates") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com"),
                                   msg("c@example.com")};
  s.enqueue(batch, "test", 0);
  auto claimed = s.claim_due("dead-daemon", 10, 10, 1000);
  REQUIRE(claimed.size() == 3);
  // Only b's sender had begun to hand it to the relay.
  auto recovered = s.recover_leases(1000, 1000, std::vector<MessageId>{claimed[1].id});
  CHECK(recovered.possible_duplicates == std::vector<MessageId>{claimed[1].id});
  CHECK(recovered.never_tried == 2);
  CHECK(s.history("a@example.com").back().type == "released");
  CHECK(s.history("b@example.com").back().type == "lease-expired");
  // a and c get back the attempt their claim took; b's was spent.
  auto next = s.claim_due("new-daemon", 10, 1001, 2000);
  REQUIRE(next.size() == 3);
  for (const auto& m : next) CHECK(m.attempts == (m.id == claimed[1].id ? 2 : 1));
}

TEST_CASE("a new database and its -wal and -shm files are the owner's alone, whatever the umask") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  auto mode_of = [](const std::string& p) {
    struct stat st {};
    REQUIRE_MESSAGE(::stat(p.c_str(), &st) == 0, p);
    return st.st_mode & 0777;
  };
  {
    struct Umask {
      mode_t old = ::umask(022);  // the usual default: files 0644 unless created otherwise
      ~Umask() { ::umask(old); }
    } umask_guard;
    SqliteStore store(path);
    enqueue_one(store, msg("a@example.com"));  // the write that makes the -wal and -shm files
    CHECK(mode_of(path) == 0600);
    CHECK(mode_of(path + "-wal") == 0600);
    CHECK(mode_of(path + "-shm") == 0600);
  }
  // An existing database keeps the mode its operator gave it.
  ::chmod(path.c_str(), 0640);
  SqliteStore again(path);
  CHECK(mode_of(path) == 0640);
  CHECK(again.counts(std::nullopt)[MessageState::queued] == 1);
}

TEST_CASE("history: a relay's reply line is recorded once, its code not repeated") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  enqueue_one(s, msg("sent@example.com"), 100);
  enqueue_one(s, msg("gone@example.com"), 100);
  auto claimed = s.claim_due("owner", 2, 200, 60200);
  REQUIRE(claimed.size() == 2);
  // As classify_attempt() writes them: the whole reply line, its code first.
  s.record_outcomes(
      std::vector<Outcome>{
          {claimed[0].id, MessageState::sent, 250, "250 2.0.0 Ok: queued as 4Xk9", 0, "",
           BounceClass::unknown},
          {claimed[1].id, MessageState::failed, 550, "550 5.1.1 <gone@example.com>: no such user",
           0, "", BounceClass::hard}},
      300);
  auto sent = s.history("sent@example.com");
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].detail == "250 2.0.0 Ok: queued as 4Xk9");
  auto gone = s.history("gone@example.com");
  REQUIRE(gone.size() == 3);
  CHECK(gone[1].detail == "550 5.1.1 <gone@example.com>: no such user");
  CHECK(gone[2].detail == "hard-bounce (all mail): 550 5.1.1 <gone@example.com>: no such user");
}

TEST_CASE("a person's own opt-out is never lost behind a suppression that already exists") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  using O = SuppressOutcome;
  auto one = [&](const char* address, const char* category, SuppressionReason reason,
                 const char* source, UnixMillis at) {
    Suppression x{address, category, reason, source, 0};
    return s.suppress({&x, 1}, at).front();
  };
  // The operator suppressed Mia's customer updates; then Mia opts out herself.
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::manual, "cli", 100) ==
        O::added);
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::unsubscribe, "one-click",
            200) == O::raised);
  auto now = s.find_suppression("mia@example.com", "customer-update");
  REQUIRE(now);
  CHECK(now->reason == SuppressionReason::unsubscribe);
  CHECK(now->source == "one-click");
  CHECK(now->created_at == 100);  // suppressed since the first record
  // Her request is in the evidence, and lifting now needs her consent.
  auto h = s.history("mia@example.com");
  REQUIRE(h.size() == 2);
  CHECK(h[1].type == "suppression-added");
  CHECK(h[1].source == "one-click");
  CHECK(h[1].detail.find("unsubscribe, raised from manual") != std::string::npos);
  CHECK(s.unsuppress("mia@example.com", "customer-update", "cli", 300, false).status ==
        LiftStatus::needs_consent);
  // The same request again, or a weaker reason: recorded, or nothing at all.
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::unsubscribe, "web", 400) ==
        O::recorded);
  CHECK(s.history("mia@example.com").back().type == "suppression-requested");
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::manual, "cli", 500) ==
        O::unchanged);
  CHECK(s.history("mia@example.com").size() == 3);
  // A complaint says more than an unsubscribe.
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::complaint, "fbl", 600) ==
        O::raised);
  // An all-mail suppression covers a category opt-out; the opt-out is still its own record.
  CHECK(one("leo@example.com", "", SuppressionReason::hard_bounce, "smtp", 700) == O::added);
  CHECK(one("leo@example.com", "research-invitation", SuppressionReason::unsubscribe, "one-click",
            800) == O::added);
  CHECK(s.history("leo@example.com").back().source == "one-click");
}

TEST_CASE("campaigns: created with their first message or import, listed with their counts") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  CHECK(s.campaigns().empty());
  CHECK_FALSE(s.campaign("november"));
  // An import opens its campaign first, recording the file the name came from.
  Campaign nov = s.open_campaign("november", "/lists/nov/november.csv", 500);
  CHECK(nov.origin == "/lists/nov/november.csv");
  CHECK(nov.created_at == 500);
  CHECK(nov.last_activity == 500);
  // Opening it again keeps its origin: the caller sees whose name it is.
  CHECK(s.open_campaign("november", "/lists/dec/november.csv", 600).origin ==
        "/lists/nov/november.csv");
  std::vector<NewMessage> batch = {msg("a@example.com", "november"),
                                   msg("b@example.com", "november"), msg("c@example.com", "ad-hoc"),
                                   msg("d@example.com", "")};
  s.enqueue(batch, "test", 1000);
  s.cancel_campaign("ad-hoc", "test", 2000);
  auto all = s.campaigns();
  REQUIRE(all.size() == 2);  // a message outside any campaign makes none
  CHECK(all[0].name == "november");
  CHECK(all[0].counts[MessageState::queued] == 2);
  CHECK(all[0].last_activity == 1000);
  CHECK(all[1].name == "ad-hoc");
  CHECK(all[1].origin == "");  // named by enqueue
  CHECK(all[1].created_at == 1000);
  CHECK(all[1].counts[MessageState::cancelled] == 1);
  CHECK(all[1].last_activity == 2000);
}

TEST_CASE("a paused campaign's messages wait, whatever makes them due, until it is resumed") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  std::vector<NewMessage> batch = {msg("a@example.com", "nov"), msg("b@example.com", "nov"),
                                   msg("c@example.com", "nov"), msg("x@example.com", "other")};
  s.enqueue(batch, "test", 100);
  // b and c are being sent when the campaign is paused.
  auto claimed = s.claim_due("o", 2, 200, 60200);
  REQUIRE(claimed.size() == 2);
  REQUIRE(claimed[1].recipient == "b@example.com");
  CHECK(s.set_campaign_paused("nov", true, 300) == 1);  // c's message held
  CHECK(s.set_campaign_paused("nov", true, 301) == 0);  // already paused
  CHECK_FALSE(s.set_campaign_paused("nope", true, 301));
  CHECK(s.campaign("nov")->paused_at == 300);
  // a's delivery is deferred, b's lease is recovered, a new recipient joins, and a retry: none of
  // them makes a message of the paused campaign due; the other campaign goes on.
  s.record_outcomes(std::vector<Outcome>{{claimed[0].id, MessageState::deferred, 451, "later", 400,
                                          "", BounceClass::unknown}},
                    350);
  s.recover_leases(1'000'000, 360, std::vector<MessageId>{});
  NewMessage late = msg("d@example.com", "nov");
  s.enqueue({&late, 1}, "test", 370);
  s.retry_campaign("nov", "test", 380);
  auto due = s.claim_due("o", 10, 1'000'000'000'000, 1'000'000'060'000);
  REQUIRE(due.size() == 1);
  CHECK(due[0].recipient == "x@example.com");
  CHECK(s.campaign("nov")->counts[MessageState::queued] == 4);  // states unchanged by a pause
  // Resumed, all four are due again, in their order.
  CHECK(s.set_campaign_paused("nov", false, 400) == 4);
  CHECK_FALSE(s.campaign("nov")->paused_at);
  auto released = s.claim_due("o", 10, 1000, 61000);
  CHECK(released.size() == 4);
}

TEST_CASE("retention deletes finished messages and old events in batches, never the evidence") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  std::vector<NewMessage> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(msg("u" + std::to_string(i) + "@example.com"));
  auto ids = s.enqueue(batch, "test", 1000);  // 5 enqueued events at 1000
  auto claimed = s.claim_due("o", 3, 1000, 61000);
  REQUIRE(claimed.size() == 3);
  s.record_outcomes(
      std::vector<Outcome>{
          {claimed[0].id, MessageState::sent, 250, "ok", 0, "", BounceClass::unknown},
          {claimed[1].id, MessageState::failed, 550, "no", 0, "", BounceClass::hard},
          {claimed[2].id, MessageState::deferred, 451, "later", 9000, "", BounceClass::unknown}},
      2000);  // u1's hard bounce suppresses it: its suppression-added event is evidence
  Suppression lifted{"u4@example.com", "", SuppressionReason::manual, "cli", 0};
  s.suppress({&lifted, 1}, 2100);
  s.unsuppress("u4@example.com", "", "cli", 2200, true);

  // Nothing is older than the cutoffs: nothing goes.
  CHECK(s.prune(1000, 1000, 100).messages == 0);
  // A cutoff of nullopt keeps that kind entirely.
  auto none = s.prune(std::nullopt, std::nullopt, 100);
  CHECK((none.messages == 0 && none.events == 0));
  // Batches of 1: one finished message (sent, then failed) at a time; the deferred and the
  // queued ones stay.
  CHECK(s.prune(5000, std::nullopt, 1).messages == 1);
  CHECK(s.prune(5000, std::nullopt, 1).messages == 1);
  CHECK(s.prune(5000, std::nullopt, 1).messages == 0);
  auto left = s.counts(std::nullopt);
  CHECK(left[MessageState::sent] == 0);
  CHECK(left[MessageState::failed] == 0);
  CHECK(left[MessageState::deferred] == 1);
  CHECK(left[MessageState::queued] == 2);
  // Events: everything before the cutoff but u1's hard-bounce evidence (u1 is still suppressed);
  // u4's lifted suppression's events are no longer evidence of anything in force.
  PruneResult r;
  std::int64_t events = 0;
  do {
    r = s.prune(std::nullopt, 3000, 2);
    events += r.events;
  } while (r.more);
  CHECK(events == 10);  // 5 enqueued, 3 outcomes, u4's suppression added and lifted
  auto u1 = s.history("u1@example.com");
  REQUIRE(u1.size() == 1);
  CHECK(u1[0].type == "suppression-added");
  CHECK(s.history("u4@example.com").empty());
  CHECK(s.find_suppression("u1@example.com", "customer-update"));
}

TEST_CASE("forget erases an address but keeps its suppressions under a salted hash") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  enqueue_one(s, msg("mia@example.com", "nov"), 1000);
  enqueue_one(s, msg("mia@example.com", "dec"), 1100);
  enqueue_one(s, msg("other@example.com", "dec"), 1100);
  Suppression sup{"mia@example.com", "research-invitation", SuppressionReason::unsubscribe,
                  "one-click", 0};
  s.suppress({&sup, 1}, 1200);

  ForgetResult r = s.forget("mia@example.com", "cli", 2000);
  CHECK(r.messages == 2);
  CHECK(r.events == 3);  // two enqueued, one suppression-added
  REQUIRE(r.suppressions.size() == 1);
  CHECK(r.suppressions[0].category == "research-invitation");
  CHECK(r.suppressions[0].reason == SuppressionReason::unsubscribe);
  CHECK(r.suppressions[0].created_at == 1200);  // the evidence of when keeps its time
  CHECK(r.key.rfind("forgotten:", 0) == 0);
  CHECK(r.key.size() == 10 + 64);
  CHECK(r.key == s.forgotten_key("mia@example.com"));
  CHECK(r.key != s.forgotten_key("other@example.com"));

  // Nothing in the database holds the address any more, in any table.
  SQLite::Database db(path);
  for (const char* q : {"SELECT count(*) FROM messages WHERE recipient LIKE '%mia%'",
                        "SELECT count(*) FROM events WHERE address LIKE '%mia%' OR detail LIKE "
                        "'%mia%'",
                        "SELECT count(*) FROM suppressions WHERE address LIKE '%mia%'"}) {
    CAPTURE(q);
    CHECK(db.execAndGet(q).getInt() == 0);
  }
  CHECK(s.counts(std::nullopt)[MessageState::queued] == 1);  // other's message stays
  // Her history is one event that holds no personal data.
  auto h = s.history("mia@example.com");
  REQUIRE(h.size() == 1);
  CHECK(h[0].type == "forgotten");
  CHECK(h[0].address == r.key);
  CHECK(h[0].detail == "erased 2 messages and 3 events; 1 suppression kept under this key");
  // A later import of her address is still suppressed, for that category only.
  CHECK(enqueue_one(s, msg("mia@example.com", "jan", "research-invitation"), 3000).status ==
        EnqueueStatus::suppressed);
  CHECK(enqueue_one(s, msg("mia@example.com", "feb", "customer-update"), 3000).status ==
        EnqueueStatus::queued);
  // Lifting it still needs her consent, found by the address she gives.
  CHECK(s.unsuppress("mia@example.com", "research-invitation", "cli", 3100, false).status ==
        LiftStatus::needs_consent);
  // The salt is the database's own: another database hashes her differently.
  TempDir other;
  SqliteStore s2((other / "q.db").string());
  CHECK(s2.forgotten_key("mia@example.com") != r.key);
  // Her import in January stored nothing of her: no row, and the event is under the key.
  CHECK(db.execAndGet("SELECT count(*) FROM messages WHERE campaign = 'jan'").getInt() == 0);
  // A one-click from a message sent before the forget keeps her forgotten: stored under the key.
  Suppression later{"mia@example.com", "", SuppressionReason::unsubscribe, "one-click", 0};
  // ... except that February's message holds her address in clear again, so it goes there.
  s.suppress({&later, 1}, 3200);
  CHECK(db.execAndGet("SELECT count(*) FROM suppressions WHERE address = 'mia@example.com'")
            .getInt() == 1);
  // Forgetting her again moves that one too, and reports every suppression kept under the key.
  auto again = s.forget("mia@example.com", "cli", 4000);
  REQUIRE(again.suppressions.size() == 2);
  CHECK(again.suppressions[0].category == "");
  CHECK(again.suppressions[1].category == "research-invitation");
  CHECK(again.suppressions[1].created_at == 1200);  // the older record kept
  CHECK(again.messages == 1);                       // February's customer update
  CHECK(again.log_emptied);
  // Now nothing holds her in clear: a new opt-out of hers is kept under the key at once.
  Suppression third{"mia@example.com", "customer-update", SuppressionReason::unsubscribe,
                    "one-click", 0};
  s.suppress({&third, 1}, 4100);
  CHECK(db.execAndGet("SELECT count(*) FROM suppressions WHERE address LIKE '%mia%'").getInt() ==
        0);
  CHECK(db.execAndGet("SELECT count(*) FROM suppressions").getInt() == 3);
  // Forgetting someone never stored records nothing.
  auto nobody = s.forget("nobody@example.com", "cli", 4200);
  CHECK((nobody.messages == 0 && nobody.events == 0 && nobody.suppressions.empty()));
  CHECK(s.history("nobody@example.com").empty());
  // And the evidence kept under the key is kept against retention too.
  s.prune(std::nullopt, 1'000'000, 100);
  CHECK(s.history("mia@example.com").size() >= 1);
}

TEST_CASE("forget says which of the messages it erased were being sent") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  enqueue_one(s, msg("mia@example.com", "nov"), 1000);
  enqueue_one(s, msg("mia@example.com", "dec"), 1000);
  REQUIRE(s.claim_due("o", 1, 1000, 61000).size() == 1);
  auto r = s.forget("mia@example.com", "cli", 2000);
  CHECK(r.messages == 2);
  CHECK(r.in_flight == 1);
  // The daemon's outcome for it finds no row: nothing of her is written back.
  s.record_outcomes(
      std::vector<Outcome>{{1, MessageState::sent, 250, "ok", 0, "", BounceClass::unknown}}, 3000);
  CHECK(s.history("mia@example.com").size() == 1);  // the forgotten event only
}

namespace {

// PRAGMA secure_delete is a connection's own setting, and a SqliteStore does not show its
// connection: SQLite hands it over as it opens it, to an automatic extension, which SQLite runs
// for every connection opened while it is registered. Only this thread's first one is caught.
thread_local bool catching_connection = false;
thread_local sqlite3* caught_connection = nullptr;

int catch_connection(sqlite3* db, char**, const sqlite3_api_routines*) {
  if (catching_connection && caught_connection == nullptr) caught_connection = db;
  return SQLITE_OK;
}

// While it lives, the first connection this thread opens is caught.
class CatchConnection {
 public:
  CatchConnection() {
    caught_connection = nullptr;
    catching_connection = true;
    // SQLite's own type for any entry point: void (*)(void).
    REQUIRE(sqlite3_auto_extension(reinterpret_cast<void (*)()>(&catch_connection)) == SQLITE_OK);
  }
  ~CatchConnection() {
    sqlite3_cancel_auto_extension(reinterpret_cast<void (*)()>(&catch_connection));
    catching_connection = false;
  }
  CatchConnection(const CatchConnection&) = delete;
  CatchConnection& operator=(const CatchConnection&) = delete;

  sqlite3* caught() const { return caught_connection; }
};

int secure_delete_of(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA secure_delete", -1, &st, nullptr) == SQLITE_OK);
  int rc = sqlite3_step(st);
  int value = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  REQUIRE(rc == SQLITE_ROW);
  return value;
}

}  // namespace

TEST_CASE("forget overwrites what it deletes and gives the connection back its secure_delete") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  std::unique_ptr<SqliteStore> s;
  sqlite3* connection = nullptr;
  {
    CatchConnection catching;
    s = std::make_unique<SqliteStore>(path);
    connection = catching.caught();
  }
  REQUIRE(connection != nullptr);
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  // What secure_delete was, on the store's own connection, each time forget deleted a message.
  db.exec(
      "CREATE TABLE test_seen (secure_delete INTEGER); "
      "CREATE TRIGGER test_note AFTER DELETE ON messages BEGIN "
      "INSERT INTO test_seen SELECT secure_delete FROM pragma_secure_delete; END");
  // Refuses the deletion of messages, halfway through forget's work (the suppressions are moved
  // already), and says whether secure_delete was on then.
  const char* refuse =
      "CREATE TRIGGER test_refuse BEFORE DELETE ON messages BEGIN SELECT CASE WHEN "
      "(SELECT secure_delete FROM pragma_secure_delete) THEN RAISE(ABORT, 'refused, secure "
      "delete on') ELSE RAISE(ABORT, 'refused, secure delete off') END; END";

  // Whatever the connection had before (the build's default is either), it has it again after.
  struct Setting {
    const char* sql;
    int value;
  };
  for (Setting before :
       {Setting{"PRAGMA secure_delete = OFF", 0}, Setting{"PRAGMA secure_delete = ON", 1},
        Setting{"PRAGMA secure_delete = FAST", 2}}) {
    CAPTURE(before.sql);
    std::string who = "p" + std::to_string(before.value) + "@example.com";
    enqueue_one(*s, msg(who), 1000);
    Suppression sup{who, "", SuppressionReason::unsubscribe, "one-click", 0};
    s->suppress({&sup, 1}, 1200);
    REQUIRE(sqlite3_exec(connection, before.sql, nullptr, nullptr, nullptr) == SQLITE_OK);
    REQUIRE(secure_delete_of(connection) == before.value);

    // A forget that throws in the middle of its work: it was on while it worked, and it is as
    // before now, and nothing of the forget stayed.
    db.exec(refuse);
    CHECK_THROWS_WITH_AS(s->forget(who, "cli", 2000),
                         doctest::Contains("refused, secure delete on"), SQLite::Exception);
    CHECK(secure_delete_of(connection) == before.value);
    CHECK(s->counts(std::nullopt)[MessageState::queued] == 1);
    auto kept = s->find_suppression(who, "customer-update");
    REQUIRE(kept);
    CHECK(kept->address == who);

    // One that returns.
    db.exec("DROP TRIGGER test_refuse");
    auto r = s->forget(who, "cli", 2000);
    CHECK(r.messages == 1);
    CHECK(secure_delete_of(connection) == before.value);
    CHECK(s->counts(std::nullopt)[MessageState::queued] == 0);
    CHECK(
        db.execAndGet("SELECT secure_delete FROM test_seen ORDER BY rowid DESC LIMIT 1").getInt() ==
        1);
  }
  CHECK(db.execAndGet("SELECT count(*) FROM test_seen").getInt() == 3);
  CHECK(db.execAndGet("SELECT count(*) FROM test_seen WHERE secure_delete != 1").getInt() == 0);
}

TEST_CASE("a message id is never given again once its message is deleted") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  auto first = enqueue_one(s, msg("a@example.com"), 1000).id;
  auto newest = enqueue_one(s, msg("b@example.com"), 1000).id;
  s.forget("b@example.com", "cli", 2000);  // deletes the newest message
  auto next = enqueue_one(s, msg("c@example.com"), 3000).id;
  CHECK(next > newest);
  CHECK(newest > first);
}
