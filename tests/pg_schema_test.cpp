#include "store/postgres/pg_schema.h"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("pg schema: an empty database is migrated once, and again changes nothing") {
  auto db = postgres_database();
  pg::Connection c(db->location());
  CHECK_THROWS_WITH_AS(require_current_postgres_schema(c), doctest::Contains("bulkmaild --check"),
                       std::runtime_error);
  migrate_postgres_schema(c);
  CHECK(c.exec("SELECT version FROM schema_version").int64(0, 0) == postgres_schema_version());
  require_current_postgres_schema(c);
  std::string salt = c.exec("SELECT value FROM meta WHERE key = 'forget_salt'").bytes(0, 0);
  CHECK(salt.size() == 32);
  migrate_postgres_schema(c);
  CHECK(c.exec("SELECT count(*) FROM schema_version").int64(0, 0) == 1);
  CHECK(c.exec("SELECT value FROM meta WHERE key = 'forget_salt'").bytes(0, 0) == salt);
}

TEST_CASE("pg schema: three daemons started at the same moment migrate once") {
  auto db = postgres_database();
  std::vector<std::thread> daemons;
  std::vector<std::string> failures(3);
  for (int i = 0; i < 3; ++i) {
    daemons.emplace_back([&, i] {
      try {
        pg::Connection c(db->location());
        migrate_postgres_schema(c);
      } catch (const std::exception& e) {
        failures[i] = e.what();
      }
    });
  }
  for (auto& t : daemons) t.join();
  for (const auto& f : failures) CHECK(f.empty());
  CHECK(db->scalar("SELECT count(*) FROM schema_version") == "1");
  CHECK(db->scalar("SELECT count(*) FROM meta WHERE key = 'forget_salt'") == "1");
}

TEST_CASE("pg schema: what no bulkmail of this build may touch is refused") {
  SUBCASE("a database of something else") {
    auto db = postgres_database();
    db->execute("CREATE TABLE invoices (id bigint)");
    pg::Connection c(db->location());
    CHECK_THROWS_WITH_AS(migrate_postgres_schema(c), doctest::Contains("not a bulkmail database"),
                         std::runtime_error);
  }
  SUBCASE("a newer bulkmail's database") {
    auto db = postgres_database();
    pg::Connection c(db->location());
    migrate_postgres_schema(c);
    c.exec("UPDATE schema_version SET version = version + 1");
    CHECK_THROWS_WITH_AS(migrate_postgres_schema(c), doctest::Contains("newer than this bulkmail"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(require_current_postgres_schema(c),
                         doctest::Contains("newer than this bulkmail"), std::runtime_error);
  }
}

TEST_CASE("pg schema: the event log keeps its evidence, as SQLite's does") {
  auto db = postgres_database();
  pg::Connection c(db->location());
  migrate_postgres_schema(c);
  c.exec(
      "INSERT INTO events (at, type, address) VALUES (1, 'suppression-added', 'a@example.org'), "
      "(2, 'sent', 'a@example.org')");
  c.exec(
      "INSERT INTO suppressions (address, category, reason, source, created_at) "
      "VALUES ('a@example.org', '', 'unsubscribe', 'test', 1)");
  CHECK_THROWS_WITH_AS(c.exec("UPDATE events SET detail = 'changed'"),
                       doctest::Contains("append-only"), pg::Error);
  CHECK_THROWS_WITH_AS(c.exec("DELETE FROM events WHERE type = 'suppression-added'"),
                       doctest::Contains("evidence of a suppression in force"), pg::Error);
  CHECK(c.exec("DELETE FROM events WHERE type = 'sent'").affected() == 1);
  c.exec("DELETE FROM suppressions");
  CHECK(c.exec("DELETE FROM events").affected() == 1);  // lifted: the evidence may go
}
