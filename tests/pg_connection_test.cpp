#include "store/postgres/pg_connection.h"

#include <doctest/doctest.h>
#include <poll.h>

#include <string>
#include <vector>

#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// A connection to a fresh schema of the test server, with one table to write to.
struct Scratch {
  std::unique_ptr<TestDatabase> db = postgres_database();
  pg::Connection c{db->location()};
  Scratch() { c.exec("CREATE TABLE t (id bigint PRIMARY KEY, name text, data bytea)"); }
};

}  // namespace

TEST_CASE("pg: parameters go as text or NULL and come back exactly") {
  Scratch s;
  std::string odd = "tab\there, newline\nthere, quote ' and \" and \\ backslash, é";
  s.c.exec("INSERT INTO t (id, name, data) VALUES ($1, $2, $3)",
           pg::Params()
               .add(std::int64_t{-9007199254740993})
               .add(odd)
               .add_bytes(std::string("\0\x01\xff\x80 bytes", 10)));
  s.c.exec("INSERT INTO t (id, name) VALUES ($1, $2)", pg::Params().add(2).add_null());
  pg::Result r = s.c.exec("SELECT id, name, data FROM t ORDER BY id");
  REQUIRE(r.rows() == 2);
  CHECK(r.int64(0, 0) == -9007199254740993);
  CHECK(r.string(0, 1) == odd);
  CHECK(r.bytes(0, 2) == std::string("\0\x01\xff\x80 bytes", 10));
  CHECK(r.is_null(1, 1));
  CHECK(r.string_or_empty(1, 1).empty());
  CHECK_FALSE(r.optional_int64(1, 2).has_value());
  CHECK_THROWS_AS(r.int64(1, 1), pg::Error);  // NULL where a number was expected
  CHECK_THROWS_AS(r.int64(0, 1), pg::Error);  // text where a number was expected

  // Arrays for = ANY: texts with the characters an array literal treats specially.
  std::vector<std::string> names = {odd, "a,b", "{x}", "NULL", ""};
  pg::Result any = s.c.exec("SELECT count(*) FROM t WHERE name = ANY($1::text[])",
                            pg::Params().add_array(names));
  CHECK(any.int64(0, 0) == 1);
  pg::Result ids = s.c.exec("SELECT count(*) FROM t WHERE id = ANY($1::bigint[])",
                            pg::Params().add_array(std::vector<std::int64_t>{2, 3}));
  CHECK(ids.int64(0, 0) == 1);
}

TEST_CASE("pg: a failing statement throws its SQLSTATE and leaves the connection usable") {
  Scratch s;
  s.c.prepare("ins", "INSERT INTO t (id, name) VALUES ($1, $2)");
  CHECK(s.c.run("ins", pg::Params().add(1).add("one")).affected() == 1);
  try {
    s.c.run("ins", pg::Params().add(1).add("again"));
    FAIL("a duplicate key did not throw");
  } catch (const pg::Error& e) {
    CHECK(e.sqlstate() == "23505");
    CHECK_FALSE(e.connection_lost());
    CHECK(std::string(e.what()).find("duplicate key") != std::string::npos);
  }
  CHECK(s.c.ok());
  CHECK_THROWS_AS(s.c.exec("SELECT * FROM no_such_table"), pg::Error);
  CHECK(s.c.exec("SELECT count(*) FROM t").int64(0, 0) == 1);
}

TEST_CASE("pg: a transaction commits whole, or rolls back when left by an exception") {
  Scratch s;
  try {
    pg::Transaction tx(s.c);
    s.c.exec("INSERT INTO t (id) VALUES (1)");
    throw std::runtime_error("stop");
  } catch (const std::runtime_error&) {
  }
  CHECK(s.c.exec("SELECT count(*) FROM t").int64(0, 0) == 0);
  {
    pg::Transaction tx(s.c);
    s.c.exec("INSERT INTO t (id) VALUES (1)");
    tx.commit();
  }
  CHECK(s.c.exec("SELECT count(*) FROM t").int64(0, 0) == 1);
  // A statement failed inside, the caller carried on: the COMMIT is a ROLLBACK, and says so.
  pg::Transaction tx(s.c);
  s.c.exec("INSERT INTO t (id) VALUES (2)");
  CHECK_THROWS_AS(s.c.exec("INSERT INTO t (id) VALUES (1)"), pg::Error);
  CHECK_THROWS_WITH_AS(tx.commit(), doctest::Contains("rolled back"), pg::Error);
  CHECK(s.c.exec("SELECT count(*) FROM t").int64(0, 0) == 1);
}

TEST_CASE("pg: a pipeline sends many statements at once and reads each result in order") {
  Scratch s;
  s.c.prepare("ins", "INSERT INTO t (id, name) VALUES ($1, $2) RETURNING id * 10");
  {
    pg::Transaction tx(s.c);
    pg::Pipeline p(s.c);
    for (int i = 0; i < 1000; ++i) p.run("ins", pg::Params().add(i).add("n" + std::to_string(i)));
    std::vector<pg::Result> results = p.results();
    REQUIRE(results.size() == 1000);
    for (int i : {0, 255, 256, 257, 999}) CHECK(results[i].int64(0, 0) == i * 10);
    tx.commit();
  }
  CHECK(s.c.exec("SELECT count(*) FROM t").int64(0, 0) == 1000);
  // A failure in the middle: thrown after the rest is read; the transaction rolls back whole.
  try {
    pg::Transaction tx(s.c);
    pg::Pipeline p(s.c);
    p.run("ins", pg::Params().add(5000).add("new"));
    p.run("ins", pg::Params().add(5).add("taken"));
    p.run("ins", pg::Params().add(5001).add("new"));
    p.results();
    FAIL("the pipeline did not throw");
  } catch (const pg::Error& e) {
    CHECK(e.sqlstate() == "23505");
  }
  CHECK(s.c.ok());
  CHECK(s.c.exec("SELECT count(*) FROM t").int64(0, 0) == 1000);
  // Left by an exception before its results were read: the connection is usable afterwards.
  try {
    pg::Pipeline p(s.c);
    p.run("ins", pg::Params().add(6000).add("x"));
    throw std::runtime_error("stop");
  } catch (const std::runtime_error&) {
  }
  CHECK(s.c.exec("SELECT count(*) FROM t WHERE id = 6000").int64(0, 0) == 1);
}

TEST_CASE("pg: COPY takes rows with any characters, and takes none when stopped") {
  Scratch s;
  std::string odd = "tab\tnewline\nreturn\rbackslash\\N";
  int batch = 0;
  std::int64_t copied = s.c.copy_in("COPY t (id, name) FROM STDIN", [&](std::string& rows) {
    for (int i = 0; i < 500; ++i) {
      rows += std::to_string(batch * 500 + i) + "\t" + pg::copy_text(odd) + "\n";
    }
    return ++batch < 4;
  });
  CHECK(copied == 2000);
  CHECK(s.c.exec("SELECT count(*) FROM t WHERE name = $1", pg::Params().add(odd)).int64(0, 0) ==
        2000);
  CHECK_THROWS_AS(s.c.copy_in("COPY t (id, name) FROM STDIN",
                              [&](std::string& rows) -> bool {
                                rows += "9000\tx\n";
                                throw std::runtime_error("the input went bad");
                              }),
                  std::runtime_error);
  CHECK(s.c.ok());
  CHECK(s.c.exec("SELECT count(*) FROM t").int64(0, 0) == 2000);
}

TEST_CASE("pg: connection failures say what happened and never show the password") {
  // Nothing listens on port 1 of loopback.
  try {
    pg::Connection c("postgresql://bulkmail:s3cret-word@127.0.0.1:1/db?connect_timeout=5");
    FAIL("connected to nothing");
  } catch (const pg::Error& e) {
    CHECK(e.connection_lost());
    std::string what = e.what();
    CHECK(what.find("cannot connect to PostgreSQL") != std::string::npos);
    CHECK(what.find("s3cret-word") == std::string::npos);
  }
  // Not a connection string at all: refused without libpq's words, which quote the string.
  try {
    pg::Connection c("postgresql://bulkmail:s3cret-word@127.0.0.1:5432/db?sslmode");
    FAIL("a malformed string connected");
  } catch (const pg::Error& e) {
    CHECK(std::string(e.what()).find("s3cret-word") == std::string::npos);
    CHECK(std::string(e.what()).find("not a PostgreSQL connection string") != std::string::npos);
  }
  // The server ends the session while it sits idle (a restart, a failover): once its word has
  // arrived, the next statement goes to a new session, and what was prepared is prepared again.
  Scratch s;
  s.c.prepare("count", "SELECT count(*) FROM t WHERE id > $1");
  pg::Connection admin(test_postgres_uri());
  admin.exec("SELECT pg_terminate_backend($1::int)", pg::Params().add(s.c.backend_pid()));
  pollfd p{s.c.socket(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);  // the server's goodbye
  CHECK(s.c.run("count", pg::Params().add(0)).int64(0, 0) == 0);
  CHECK(s.c.reconnects() == 1);
  CHECK(s.c.ok());
  // Inside a transaction it never reconnects: what the transaction did is gone, and it says so.
  {
    pg::Transaction tx(s.c);
    s.c.exec("INSERT INTO t (id) VALUES (1)");
    admin.exec("SELECT pg_terminate_backend($1::int)", pg::Params().add(s.c.backend_pid()));
    CHECK_THROWS_AS(s.c.exec("INSERT INTO t (id) VALUES (2)"), pg::Error);
    try {
      s.c.exec("INSERT INTO t (id) VALUES (3)");
      FAIL("a statement ran on after the transaction's connection was lost");
    } catch (const pg::Error& e) {
      CHECK(e.connection_lost());
    }
  }
  CHECK(s.c.run("count", pg::Params().add(0)).int64(0, 0) == 0);  // nothing of it was kept
  CHECK(s.c.reconnects() == 2);
}
