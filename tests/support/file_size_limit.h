// What a full disk does to a write, without a disk to fill: while a FileSizeLimit lives, no file
// of this process may grow past a size (RLIMIT_FSIZE). SIGXFSZ is ignored meanwhile, so a write
// past the limit fails with EFBIG instead of killing the test, and SQLite reports it as it
// reports a full disk: its transaction fails and is rolled back.
#pragma once

#include <sys/resource.h>

#include <csignal>
#include <stdexcept>

namespace bulkmail::test {

class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    if (::getrlimit(RLIMIT_FSIZE, &before_) != 0) throw std::runtime_error("getrlimit failed");
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limited = before_;
    limited.rlim_cur = bytes;
    if (::setrlimit(RLIMIT_FSIZE, &limited) != 0) throw std::runtime_error("setrlimit failed");
  }
  ~FileSizeLimit() { lift(); }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

  // Space is back.
  void lift() {
    if (lifted_) return;
    lifted_ = true;
    ::setrlimit(RLIMIT_FSIZE, &before_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit before_{};
  void (*old_handler_)(int) = SIG_DFL;
  bool lifted_ = false;
};

}  // namespace bulkmail::test
