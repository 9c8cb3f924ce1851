#include "base/disk_space.h"

#include <doctest/doctest.h>

#include <limits>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("no space left: what the file system holding a path has, against a margin") {
  TempDir dir;
  // Whatever this machine's disk holds, it is less than everything and at least nothing.
  CHECK(no_space_left(dir.path(), std::numeric_limits<std::uintmax_t>::max()));
  CHECK_FALSE(no_space_left(dir.path(), 0));
  // A database file not made yet is judged by its folder.
  CHECK(no_space_left(dir / "q.db", std::numeric_limits<std::uintmax_t>::max()));
  // What cannot be looked at is not said to be full.
  CHECK_FALSE(
      no_space_left("/nonexistent-bulkmail/q.db", std::numeric_limits<std::uintmax_t>::max()));
}
