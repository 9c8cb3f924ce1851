// What a piece of code wrote to stderr (log lines, say), for tests that read the log.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "temp_dir.h"

namespace bulkmail::test {

// Runs `fn` with stderr going to a file, and returns what was written there.
template <typename Fn>
std::string captured_stderr(Fn fn) {
  TempDir dir;
  auto path = dir.path() / "stderr";
  std::fflush(stderr);
  int saved = ::dup(STDERR_FILENO);
  std::FILE* f = std::fopen(path.c_str(), "w");
  ::dup2(::fileno(f), STDERR_FILENO);
  fn();
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::fclose(f);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace bulkmail::test
