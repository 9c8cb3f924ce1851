#include "store/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace bulkmail {

Result<InstanceLock> InstanceLock::acquire(const std::string& database) {
  std::string path = database + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return make_error("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK)
      return make_error("another bulkmaild is already running on " + database);
    return make_error("cannot lock " + path + ": " + std::strerror(err));
  }
  return InstanceLock(std::move(fd));
}

bool InstanceLock::held(const std::string& database) {
  std::string path = database + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;  // no daemon ever ran here
  // A shared lock taken here is released when `fd` closes on return.
  return ::flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
}

}  // namespace bulkmail
