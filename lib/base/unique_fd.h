// An owned file descriptor, closed when its owner goes, as every OpenSSL and curl handle is: on
// every path, early returns and exceptions included. Move-only, like std::unique_ptr. A negative
// value means "none"; nothing else about the descriptor is checked.
//
// The destructor ignores what close(2) says (there is no one to tell) and leaves errno as it was,
// so an error read from errno after a failed call is not overwritten by a cleanup on the way out.
// Code for which a failed close matters calls reset() and looks at what it returns. (The outcome
// journal does not: a segment whose close fails is read back at the next start like any other.)
#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace bulkmail {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  // Takes ownership of `fd` (-1, say from a failed open(2), holds none).
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() {
    int saved = errno;
    reset();
    errno = saved;
  }

  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  // Closes what this one held, then takes what `other` held; `other` holds none.
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // The descriptor, still owned by this object (-1 if none).
  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership without closing: the caller now owns the returned descriptor (-1 if none).
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the descriptor held, if any, and takes `fd` in its place. Returns 0, or the errno of a
  // close(2) that failed; the old descriptor is gone either way (Linux frees it even when close
  // reports an error, so it must not be closed again). Taking the descriptor already held keeps it
  // open.
  int reset(int fd = -1) noexcept {
    int old = std::exchange(fd_, fd);
    if (old < 0 || old == fd) return 0;
    return ::close(old) == 0 ? 0 : errno;
  }

 private:
  int fd_ = -1;
};

}  // namespace bulkmail
