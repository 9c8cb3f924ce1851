// The store behaviour suite's databases: each test gets a fresh, empty one of either backend, and
// runs unchanged on both (TEST_CASE_TEMPLATE over SqliteBackend and PostgresBackend).
//
// PostgreSQL: the server tests/postgres_server.py started for ctest (its URI in the environment,
// BULKMAIL_TEST_POSTGRES, or in the file BULKMAIL_TEST_POSTGRES_FILE names), or, for a unit_tests
// run by hand, one this process starts in a temporary folder and stops when it exits. Each database
// is a schema of its own on that server, dropped at the end, so tests never see each other's rows.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/store.h"

namespace bulkmail::test {

class TestDatabase {
 public:
  virtual ~TestDatabase() = default;
  // A new store on the database: another connection, as another thread or process opens.
  virtual std::unique_ptr<Store> open() = 0;
  // A new store that must find the database already made (bulkmailctl's way of opening).
  virtual std::unique_ptr<Store> open_existing() = 0;
  // The first column of the first row of `sql` as text ("" for NULL), for the tests that look at
  // what the store wrote. Parameters are $1, $2 ... in both dialects (SQLite reads $1 as a
  // parameter too); the SQL must be valid in both.
  virtual std::string scalar(const std::string& sql,
                             const std::vector<std::string>& params = {}) = 0;
  // Runs SQL that changes the database (both dialects), for tests that set up odd states.
  virtual void execute(const std::string& sql, const std::vector<std::string>& params = {}) = 0;
  // What the store opens: a file path, or a PostgreSQL connection string.
  virtual std::string location() const = 0;
  virtual const char* backend() const = 0;  // "sqlite" or "postgresql"
};

// A fresh SQLite file in a temporary folder.
std::unique_ptr<TestDatabase> sqlite_database();
// A fresh schema on the test PostgreSQL server.
std::unique_ptr<TestDatabase> postgres_database();
// The test server's connection string (starting it first when this process has to).
const std::string& test_postgres_uri();

struct SqliteBackend {
  static std::unique_ptr<TestDatabase> make() { return sqlite_database(); }
};
struct PostgresBackend {
  static std::unique_ptr<TestDatabase> make() { return postgres_database(); }
};

}  // namespace bulkmail::test

// For TEST_CASE_TEMPLATE(name, B, BULKMAIL_STORE_BACKENDS).
#define BULKMAIL_STORE_BACKENDS bulkmail::test::SqliteBackend, bulkmail::test::PostgresBackend
