// One daemon per SQLite database: an exclusive flock(2) on "<database>.lock", held for the
// process's life and released by the kernel however the process ends (kill -9 included). Holding
// it, a starting daemon knows every lease in the file belongs to a dead process.
#pragma once

#include <string>
#include <utility>

#include "base/result.h"
#include "base/unique_fd.h"

namespace bulkmail {

class InstanceLock {
 public:
  // Fails when another process holds the lock.
  static Result<InstanceLock> acquire(const std::string& database);
  // Whether a daemon holds the lock on `database` now (for `bulkmailctl status`). Takes a shared
  // lock for an instant to find out.
  static bool held(const std::string& database);
  InstanceLock(InstanceLock&&) noexcept = default;
  InstanceLock& operator=(InstanceLock&&) = delete;
  InstanceLock(const InstanceLock&) = delete;

 private:
  explicit InstanceLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it releases the lock
};

}  // namespace bulkmail
