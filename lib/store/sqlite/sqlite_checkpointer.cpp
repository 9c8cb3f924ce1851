#include "store/sqlite/sqlite_checkpointer.h"

#include <sqlite3.h>

#include "base/log.h"
#include "store/sqlite/sqlite_busy.h"

namespace bulkmail {

SqliteCheckpointer::SqliteCheckpointer(const std::string& path, std::chrono::milliseconds interval,
                                       int restart_frames)
    : restart_frames_(restart_frames),
      db_(path, SQLite::OPEN_READWRITE, 5000),
      interval_(interval) {
  // Opens the log: until this connection has looked at the database, a checkpoint does nothing.
  db_.exec("PRAGMA journal_mode = WAL");
  // A RESTART holds back the writer while it waits for readers: give up soon and try next time.
  wait_when_busy(db_.getHandle(), std::chrono::milliseconds(10));
  thread_ = std::thread([this] { loop(); });
}

SqliteCheckpointer::~SqliteCheckpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::size_t SqliteCheckpointer::runs() const {
  std::lock_guard lock(mu_);
  return runs_;
}

void SqliteCheckpointer::checkpoint() {
  int log_frames = 0, done = 0;
  sqlite3* db = db_.getHandle();
  int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
  // The writer starts the log over by itself only when every page in it has been copied back at
  // the moment it begins a transaction, which a busy writer (or a reader holding an old snapshot)
  // rarely allows, so the log grows without end (seen: 1.9 GB in 25 s), making every page lookup
  // slower. Past a bound, wait for the readers (they are short) and restart the log; that
  // briefly holds back the writer, so it should be rare.
  bool tried_restart = false;
  auto now = std::chrono::steady_clock::now();
  if (rc == SQLITE_OK && log_frames > restart_frames_ && now >= next_restart_) {
    tried_restart = true;
    rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_RESTART, &log_frames, &done);
    if (rc == SQLITE_BUSY && done >= 0 && done == busy_done_) {
      // Busy again, and not one more page copied back since the last try: a reader holds its
      // snapshot (a long `suppress export`, say), and will for a while. Back off instead of
      // holding the writer back every interval while it does.
      restart_backoff_ = restart_backoff_.count() == 0
                             ? interval_
                             : std::min(kMaxRestartBackoff, restart_backoff_ * 2);
      next_restart_ = now + restart_backoff_;
    } else {
      // Done, or busy while the copying goes on: the readers in the way are short ones, only
      // slow to finish (a loaded machine, where a reader waits for a core), so the next interval
      // tries again. Backing off there let the log grow to 89 MB while the writer went on.
      busy_done_ = rc == SQLITE_BUSY ? done : -1;
      restart_backoff_ = std::chrono::milliseconds(0);
      next_restart_ = {};
    }
  }
  // A full disk fails every checkpoint until space returns: said once when it starts, once when
  // it ends, never at every interval.
  bool failed = rc != SQLITE_OK && rc != SQLITE_BUSY;
  if (failed) {
    if (failed_tries_++ == 0)
      log_warning(std::string("checkpointing the database failed: ") + sqlite3_errstr(rc) +
                  "; the write-ahead log grows until it works again (tried every " +
                  std::to_string(interval_.count()) + " ms)");
  } else if (rc == SQLITE_OK && failed_tries_ > 0) {
    log_info("checkpointing the database works again, after " + std::to_string(failed_tries_) +
             " failed tries");
    failed_tries_ = 0;
  }
  std::lock_guard lock(mu_);
  ++runs_;
  if (tried_restart) ++restart_attempts_;
  if (failed) ++failures_;
}

std::size_t SqliteCheckpointer::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

std::size_t SqliteCheckpointer::restart_attempts() const {
  std::lock_guard lock(mu_);
  return restart_attempts_;
}

void SqliteCheckpointer::loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [&] { return stopping_; });
    lock.unlock();
    checkpoint();
    lock.lock();
  }
}

}  // namespace bulkmail
