// Moves the SQLite write-ahead log into the database file from a thread of its own. The daemon's
// writer commits with automatic checkpoints off, so a commit never waits for the pages of earlier
// ones to be copied and synced: opt-outs and delivery outcomes keep their latency while the WAL
// is being checkpointed. Checkpoints here are PASSIVE (they never block a writer or a reader)
// until the log passes a bound; then one RESTART lets it start over.
#pragma once

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace bulkmail {

class SqliteCheckpointer {
 public:
  // `restart_frames`: past this many pages in the log, a RESTART checkpoint starts it over. A
  // RESTART holds the writer back while it waits for readers and syncs the database file (up to
  // about 8 ms seen), which one-click opt-outs feel; a larger bound means fewer of them.
  SqliteCheckpointer(const std::string& path, std::chrono::milliseconds interval,
                     int restart_frames = kDefaultRestartFrames);
  ~SqliteCheckpointer();  // one last checkpoint, then stops

  // How many checkpoints have run, how many of them tried a RESTART, and how many failed for a
  // reason other than a busy database (a full disk), for tests. A run of failures is logged
  // once as it starts and once as it ends.
  std::size_t runs() const;
  std::size_t restart_attempts() const;
  std::size_t failures() const;

  // A RESTART that found a reader holding its snapshot (a long `suppress export`, say), so that
  // no more of the log was copied back than the time before, is not tried again at every
  // interval: each one holds the writer back for the busy wait, so the retries back off, doubling
  // from `interval` up to this.
  static constexpr std::chrono::milliseconds kMaxRestartBackoff{5000};

 private:
  void loop();
  void checkpoint();

  static constexpr int kDefaultRestartFrames = 8000;  // about 32 MB of log with 4 KiB pages
  const int restart_frames_;

  SQLite::Database db_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::size_t runs_ = 0;
  std::size_t restart_attempts_ = 0;
  std::size_t failures_ = 0;
  // Checkpointer thread only: failures since the last checkpoint that worked.
  std::size_t failed_tries_ = 0;
  // Checkpointer thread only: when a RESTART may be tried again, the wait after the last busy
  // one, and how many pages of the log had been copied back then (-1: it was not busy).
  std::chrono::steady_clock::time_point next_restart_{};
  std::chrono::milliseconds restart_backoff_{0};
  int busy_done_ = -1;
  std::thread thread_;
};

}  // namespace bulkmail
