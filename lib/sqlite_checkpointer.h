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
  SqliteCheckpointer(const std::string& path, std::chrono::milliseconds interval);
  ~SqliteCheckpointer();  // one last checkpoint, then stops

  // How many checkpoints have run (for tests).
  std::size_t runs() const;

 private:
  void loop();
  void checkpoint();

  static constexpr int kRestartFrames = 1000;  // about 4 MB of log with 4 KiB pages

  SQLite::Database db_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::size_t runs_ = 0;
  std::thread thread_;
};

}  // namespace bulkmail
