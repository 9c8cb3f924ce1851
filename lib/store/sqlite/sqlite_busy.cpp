#include "store/sqlite/sqlite_busy.h"

#include <cstdint>
#include <thread>

namespace bulkmail {
namespace {

constexpr int kFastPolls = 100;  // 100 polls 100 µs apart: the first 10 ms

int on_busy(void* limit_ms, int count) {
  auto limit = static_cast<std::int64_t>(reinterpret_cast<std::intptr_t>(limit_ms));
  std::int64_t waited_us = count < kFastPolls
                               ? std::int64_t{count} * 100
                               : kFastPolls * 100 + std::int64_t{count - kFastPolls} * 1000;
  if (waited_us >= limit * 1000) return 0;  // give up: the caller gets SQLITE_BUSY
  std::this_thread::sleep_for(std::chrono::microseconds(count < kFastPolls ? 100 : 1000));
  return 1;
}

}  // namespace

void wait_when_busy(sqlite3* db, std::chrono::milliseconds limit) {
  sqlite3_busy_handler(db, on_busy,
                       reinterpret_cast<void*>(static_cast<std::intptr_t>(limit.count())));
}

}  // namespace bulkmail
