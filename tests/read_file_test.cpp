#include "base/read_file.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

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
  CHECK(missing.error().message ==
        (dir / "nope").string() + ": cannot read: " + std::strerror(ENOENT));
}

TEST_CASE("a folder is an error naming it, not an empty file") {
  TempDir dir;
  auto read = read_file(dir.path());
  REQUIRE_FALSE(read.ok());
  CHECK(read.error().message == dir.path().string() + ": is a folder");
  CHECK(read_file(dir.write("empty", "")).value().empty());
}

TEST_CASE("a prefix is at most max_bytes, and the whole of a shorter file") {
  TempDir dir;
  std::string bytes(200'000, 'x');
  bytes[0] = '\0';
  bytes[199'999] = '\xff';
  auto file = dir.write("big", bytes);
  // Reads end where the limit falls, also inside a read buffer's worth.
  for (std::size_t max : {std::size_t{0}, std::size_t{1}, std::size_t{65'537}, std::size_t{199'999},
                          std::size_t{200'000}, std::size_t{200'001}, std::size_t{10'000'000}}) {
    CAPTURE(max);
    auto read = read_file_prefix(file, max);
    REQUIRE(read.ok());
    CHECK(*read == bytes.substr(0, max));
  }
  CHECK(read_file_prefix(dir.write("empty", ""), 10).value().empty());
}

TEST_CASE("a prefix of what cannot be read is an error naming it, and why") {
  TempDir dir;
  auto missing = read_file_prefix(dir / "nope", 10);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message ==
        (dir / "nope").string() + ": cannot read: " + std::strerror(ENOENT));
  for (FileKinds kinds : {FileKinds::any, FileKinds::regular}) {
    auto folder = read_file_prefix(dir.path(), 10, kinds);
    REQUIRE_FALSE(folder.ok());
    CHECK(folder.error().message == dir.path().string() + ": is a folder");
  }
}

TEST_CASE("FileKinds::regular refuses a symbolic link and a FIFO, any follows and reads them") {
  TempDir dir;
  auto target = dir.write("target", "the report");
  std::filesystem::create_symlink(target, dir / "link");
  CHECK(read_file_prefix(dir / "link", 100, FileKinds::any).value() == "the report");
  auto link = read_file_prefix(dir / "link", 100, FileKinds::regular);
  REQUIRE_FALSE(link.ok());
  CHECK(link.error().message == (dir / "link").string() + ": a symbolic link, not a regular file");
  CHECK(read_file_prefix(target, 100, FileKinds::regular).value() == "the report");

  // No one writes to the FIFO: opening it for FileKinds::any would wait for a writer, so only
  // the refusal is tried, and it must not block.
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  auto fifo = read_file_prefix(dir / "fifo", 100, FileKinds::regular);
  REQUIRE_FALSE(fifo.ok());
  CHECK(fifo.error().message == (dir / "fifo").string() + ": not a regular file");
}
