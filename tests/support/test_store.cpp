#include "test_store.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "process.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"
#include "temp_dir.h"

namespace bulkmail::test {
namespace {

class SqliteDatabase final : public TestDatabase {
 public:
  SqliteDatabase() : path_((dir_ / "queue.db").string()) {}
  std::unique_ptr<Store> open() override { return std::make_unique<SqliteStore>(path_); }
  std::unique_ptr<Store> open_existing() override {
    return std::make_unique<SqliteStore>(path_, true, SqliteOpen::existing);
  }
  std::string scalar(const std::string& sql, const std::vector<std::string>& params) override {
    SQLite::Database db(path_);
    SQLite::Statement st(db, sql);
    bind(st, params);
    if (!st.executeStep() || st.getColumn(0).isNull()) return {};
    return st.getColumn(0).getString();
  }
  void execute(const std::string& sql, const std::vector<std::string>& params) override {
    SQLite::Database db(path_, SQLite::OPEN_READWRITE);
    SQLite::Statement st(db, sql);
    bind(st, params);
    st.exec();
  }
  std::string location() const override { return path_; }
  const char* backend() const override { return "sqlite"; }

 private:
  static void bind(SQLite::Statement& st, const std::vector<std::string>& params) {
    for (std::size_t i = 0; i < params.size(); ++i) st.bind(static_cast<int>(i + 1), params[i]);
  }
  TempDir dir_;
  std::string path_;
};

// A schema of its own on the test server, found first on the search path of every connection
// made with location(); dropped with everything in it at the end.
class PostgresDatabase final : public TestDatabase {
 public:
  PostgresDatabase() {
    static std::atomic<int> counter{0};
    schema_ = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    pg::Connection admin(test_postgres_uri());
    admin.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    admin.exec("CREATE SCHEMA " + schema_);
    location_ = test_postgres_uri() + "?options=-csearch_path%3D" + schema_;
  }
  ~PostgresDatabase() override {
    try {
      pg::Connection admin(test_postgres_uri());
      admin.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    } catch (const std::exception&) {
      // The server went away (a test of that): its folder goes with it.
    }
  }
  std::unique_ptr<Store> open() override { return std::make_unique<PostgresStore>(location_); }
  std::unique_ptr<Store> open_existing() override {
    return std::make_unique<PostgresStore>(location_, PostgresOpen::existing);
  }
  std::string scalar(const std::string& sql, const std::vector<std::string>& params) override {
    pg::Connection c(location_);
    pg::Result r = c.exec(sql, to_params(params));
    if (r.empty() || r.is_null(0, 0)) return {};
    return r.string(0, 0);
  }
  void execute(const std::string& sql, const std::vector<std::string>& params) override {
    pg::Connection c(location_);
    c.exec(sql, to_params(params));
  }
  std::string location() const override { return location_; }
  const char* backend() const override { return "postgresql"; }

 private:
  static pg::Params to_params(const std::vector<std::string>& params) {
    pg::Params p;
    for (const auto& v : params) p.add(v);
    return p;
  }
  std::string schema_, location_;
};

// The server this process started, when ctest did not give one; stopped at exit.
std::string started_state;
void stop_started_server() {
  if (started_state.empty()) return;
  std::string cmd = "python3 " + std::string(BULKMAIL_TEST_SOURCE_DIR) +
                    "/tests/postgres_server.py stop " + started_state + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not stop the test PostgreSQL\n");
  std::error_code ec;
  std::filesystem::remove_all(started_state, ec);
}

}  // namespace

std::unique_ptr<TestDatabase> sqlite_database() { return std::make_unique<SqliteDatabase>(); }
std::unique_ptr<TestDatabase> postgres_database() { return std::make_unique<PostgresDatabase>(); }

const std::string& test_postgres_uri() {
  static const std::string uri = [] {
    if (const char* given = std::getenv("BULKMAIL_TEST_POSTGRES"); given && *given) {
      return std::string(given);
    }
    // ctest's fixture: the server postgres_server.py started, its URI in this file.
    if (const char* file = std::getenv("BULKMAIL_TEST_POSTGRES_FILE"); file && *file) {
      std::ifstream in(file);
      std::string uri;
      if (std::getline(in, uri) && !uri.empty()) return uri;
    }
    std::string state = (std::filesystem::temp_directory_path() /
                         ("bulkmail-pg-state-" + std::to_string(::getpid())))
                            .string();
    ProcessResult r = run_process(
        {"/usr/bin/python3", std::string(BULKMAIL_TEST_SOURCE_DIR) + "/tests/postgres_server.py",
         "start", state});
    if (r.status != 0) throw std::runtime_error("could not start a test PostgreSQL: " + r.err);
    started_state = state;
    std::atexit(stop_started_server);
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }();
  return uri;
}

}  // namespace bulkmail::test
