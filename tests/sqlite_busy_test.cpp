#include "store/sqlite/sqlite_busy.h"

#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("a busy connection waits for the lock up to its limit, then gives up") {
  TempDir dir;
  std::string path = (dir.path() / "b.db").string();
  SQLite::Database holder(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  holder.exec("PRAGMA journal_mode = WAL");
  holder.exec("CREATE TABLE t (x)");
  SQLite::Database patient(path, SQLite::OPEN_READWRITE), hasty(path, SQLite::OPEN_READWRITE);
  wait_when_busy(patient.getHandle(), std::chrono::milliseconds(5000));
  wait_when_busy(hasty.getHandle(), std::chrono::milliseconds(5));

  holder.exec("BEGIN IMMEDIATE");
  holder.exec("INSERT INTO t VALUES (1)");
  auto release = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    holder.exec("COMMIT");
  });
  CHECK_THROWS_WITH(hasty.exec("INSERT INTO t VALUES (2)"), "database is locked");
  CHECK_NOTHROW(patient.exec("INSERT INTO t VALUES (3)"));  // once the holder commits
  release.get();
  CHECK(patient.execAndGet("SELECT count(*) FROM t").getInt() == 2);
}
