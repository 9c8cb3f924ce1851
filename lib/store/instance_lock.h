// One daemon per SQLite database: an exclusive flock(2) on "<database>.lock", held for the
// process's life and released by the kernel however the process ends (kill -9 included). Holding
// it, a starting daemon knows every lease in the file belongs to a dead process.
#pragma once

#include <string>

#include "base/result.h"

namespace bulkmail {

class InstanceLock {
 public:
  // Fails when another process holds the lock.
  static Result<InstanceLock> acquire(const std::string& database);
  // Whether a daemon holds the lock on `database` now (for `bulkmailctl status`). Takes a shared
  // lock for an instant to find out.
  static bool held(const std::string& database);
  InstanceLock(InstanceLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  InstanceLock& operator=(InstanceLock&&) = delete;
  InstanceLock(const InstanceLock&) = delete;
  ~InstanceLock();

 private:
  explicit InstanceLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace bulkmail
