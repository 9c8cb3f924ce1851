// SqliteStore's own machinery: its file, WAL, PRAGMAs and migrations from its older versions. What
// every backend must do is the behaviour suite, store_test.cpp.
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

#include "store_helpers.h"
#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

// SQLite's own: journal mode and PRAGMA user_version (reopening is in store_test.cpp).
TEST_CASE("a new database is created in WAL mode at the current schema version") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore store(path);
  SQLite::Database db(path);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == SqliteStore::schema_version());
  CHECK(SqliteStore::schema_version() == 6);
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

TEST_CASE("the claim looks each recipient up by the suppressions' key, never scanning them") {
  // Scanning would cost every claim a pass over the whole suppression list per message: with
  // 20,000 one-click opt-outs arriving, claims held the writer long enough to push the opt-outs'
  // p99 from 8 ms to 90 ms. And the due retries are found by their own index, not by walking the
  // backlog in front of them.
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  SQLite::Database db(path);
  for (const auto& [sql, index] : {std::pair{sqlite_claim_sql(), "messages_due"},
                                   std::pair{sqlite_claim_retries_sql(), "messages_retry_due"}}) {
    SQLite::Statement plan(db, "EXPLAIN QUERY PLAN " + sql);
    std::vector<std::string> steps;
    while (plan.executeStep()) steps.push_back(plan.getColumn(3).getString());
    CAPTURE(steps);
    bool keyed = false, indexed = false;
    for (const auto& step : steps) {
      CHECK(step.find("SCAN s") == std::string::npos);
      if (step.find("SEARCH s USING PRIMARY KEY (address=?") != std::string::npos) keyed = true;
      if (step.find(std::string("USING INDEX ") + index + " ") != std::string::npos) indexed = true;
    }
    CHECK(keyed);
    CHECK(indexed);
  }
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

// SQLite's own: its write-ahead log keeps copies of erased pages until a checkpoint empties it.
TEST_CASE("forget empties the write-ahead log when no reader holds an older snapshot") {
  TempDir dir;
  auto path = (dir / "q.db").string();
  SqliteStore s(path);
  enqueue_one(s, msg("mia@example.com", "nov"), 1000);
  s.forget("mia@example.com", "cli", 2000);
  // Another connection that has read and finished holds no snapshot.
  SQLite::Database db(path);
  CHECK(db.execAndGet("SELECT count(*) FROM messages").getInt() == 0);
  enqueue_one(s, msg("mia@example.com", "feb"), 3000);
  auto again = s.forget("mia@example.com", "cli", 4000);
  CHECK(again.messages == 1);
  CHECK(again.log_emptied);
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
