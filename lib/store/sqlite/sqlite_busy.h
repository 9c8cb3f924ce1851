// How a bulkmail SQLite connection waits for a lock another connection holds. SQLite's own busy
// timeout sleeps in growing steps (up to 100 ms a step), so a connection that finds the database
// locked for a moment often sleeps long after the lock is gone. Here it looks again every 100 µs
// for the first 10 ms, then every millisecond, up to `limit`.
#pragma once

#include <sqlite3.h>

#include <chrono>

namespace bulkmail {

void wait_when_busy(sqlite3* db, std::chrono::milliseconds limit);

}  // namespace bulkmail
