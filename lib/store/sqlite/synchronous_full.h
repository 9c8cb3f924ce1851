// While one of these lives, the connection's commits wait for the disk (PRAGMA synchronous =
// FULL), unlike the queue's (NORMAL), where a lost commit means a resend at worst. For opt-outs:
// once confirmed to the recipient, one must survive even a power failure.
#pragma once

#include <SQLiteCpp/Database.h>

namespace bulkmail {

class SynchronousFull {
 public:
  explicit SynchronousFull(SQLite::Database& db) : db_(db) {
    db_.exec("PRAGMA synchronous = FULL");
  }
  ~SynchronousFull() {
    try {
      db_.exec("PRAGMA synchronous = NORMAL");
    } catch (...) {
    }
  }
  SynchronousFull(const SynchronousFull&) = delete;
  SynchronousFull& operator=(const SynchronousFull&) = delete;

 private:
  SQLite::Database& db_;
};

}  // namespace bulkmail
