#include "base/unique_fd.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <utility>

using namespace bulkmail;

namespace {

// A fresh descriptor for the tests to own.
int open_null() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return fd;
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

bool is_closed(int fd) {
  errno = 0;
  return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

}  // namespace

TEST_CASE("a default UniqueFd holds none and a negative one is none too") {
  UniqueFd none;
  CHECK_FALSE(none);
  CHECK_FALSE(none.valid());
  CHECK(none.get() == -1);
  CHECK(none.reset() == 0);  // nothing to close
  UniqueFd failed_open(-1);
  CHECK_FALSE(failed_open);
  CHECK(failed_open.get() == -1);
}

TEST_CASE("the descriptor is closed when its owner goes, and errno is left as it was") {
  int raw = open_null();
  {
    UniqueFd fd(raw);
    CHECK(fd);
    CHECK(fd.valid());
    CHECK(fd.get() == raw);
    CHECK(is_open(raw));
    errno = ENOENT;
  }
  int after = errno;  // read before CHECK's own work can touch it
  CHECK(after == ENOENT);
  CHECK(is_closed(raw));
}

TEST_CASE("the descriptor is closed when an exception leaves the owner's scope") {
  int raw = open_null();
  try {
    UniqueFd fd(raw);
    throw 1;
  } catch (int) {
  }
  CHECK(is_closed(raw));
}

TEST_CASE("a move hands the descriptor over and leaves the source holding none") {
  int raw = open_null();
  UniqueFd from(raw);
  {
    UniqueFd to(std::move(from));
    CHECK(to.get() == raw);
    CHECK_FALSE(from);  // NOLINT(bugprone-use-after-move): a moved-from UniqueFd holds none
    CHECK(from.get() == -1);
    CHECK(is_open(raw));
  }
  CHECK(is_closed(raw));  // closed once, by the new owner
}

TEST_CASE("move assignment closes what the target held and takes what the source held") {
  int old_raw = open_null();
  int new_raw = open_null();
  UniqueFd target(old_raw);
  UniqueFd source(new_raw);
  target = std::move(source);
  CHECK(is_closed(old_raw));
  CHECK(target.get() == new_raw);
  CHECK(is_open(new_raw));
  CHECK_FALSE(source);  // NOLINT(bugprone-use-after-move)
  target = UniqueFd();
  CHECK(is_closed(new_raw));
  CHECK_FALSE(target);
}

TEST_CASE("release gives up ownership without closing") {
  int raw = open_null();
  {
    UniqueFd fd(raw);
    CHECK(fd.release() == raw);
    CHECK_FALSE(fd);
    CHECK(fd.get() == -1);
    CHECK(fd.release() == -1);  // nothing left to give
  }
  CHECK(is_open(raw));  // the caller owns it now
  CHECK(::close(raw) == 0);
}

TEST_CASE("reset closes the old descriptor and takes the new one") {
  int first = open_null();
  int second = open_null();
  UniqueFd fd(first);
  CHECK(fd.reset(second) == 0);
  CHECK(is_closed(first));
  CHECK(fd.get() == second);
  CHECK(is_open(second));
  CHECK(fd.reset() == 0);
  CHECK(is_closed(second));
  CHECK_FALSE(fd);
}

TEST_CASE("reset with the descriptor already held keeps it open") {
  int raw = open_null();
  UniqueFd fd(raw);
  CHECK(fd.reset(raw) == 0);
  CHECK(fd.get() == raw);
  CHECK(is_open(raw));
}

TEST_CASE("reset reports the errno of a close that fails, and holds none after it") {
  // No process can have this descriptor open (the kernel's ceiling, fs.nr_open, is below it), so
  // its close fails with EBADF without the risk of closing a descriptor someone else opened.
  UniqueFd stale(std::numeric_limits<int>::max());
  CHECK(stale);
  CHECK(stale.reset() == EBADF);
  CHECK_FALSE(stale);
  CHECK(stale.reset() == 0);  // and is not tried again
}
