#include "base/read_file.h"

#include <doctest/doctest.h>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("a file is read whole, byte for byte, and a missing one is named in the error") {
  TempDir dir;
  std::string bytes("one\r\ntwo\0three\xff", 15);
  auto read = read_file(dir.write("f.bin", bytes));
  REQUIRE(read.ok());
  CHECK(*read == bytes);
  auto missing = read_file(dir / "nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == (dir / "nope").string() + ": cannot read");
}

TEST_CASE("a folder is an error naming it, not an empty file") {
  TempDir dir;
  auto read = read_file(dir.path());
  REQUIRE_FALSE(read.ok());
  CHECK(read.error().message == dir.path().string() + ": is a folder");
  CHECK(read_file(dir.write("empty", "")).value().empty());
}
