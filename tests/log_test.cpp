#include "base/log.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// What log() wrote to stderr while `fn` ran.
template <typename Fn>
std::string logged(Fn fn) {
  TempDir dir;
  auto path = dir.path() / "stderr";
  std::fflush(stderr);
  int saved = ::dup(STDERR_FILENO);
  std::FILE* f = std::fopen(path.c_str(), "w");
  ::dup2(::fileno(f), STDERR_FILENO);
  fn();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::fclose(f);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("with masking on, no address reaches a log line, whatever its source") {
  LogSettings config;
  configure_logging(config);
  std::string out = logged([] {
    log_info("hard bounce from " + log_address("bounce1@example.com") +
             ": 550 5.1.1 <bounce1@example.com>: Recipient address rejected");
    log_warning("message 7 refused by the relay: 554 5.7.1 <pat.smith@example.org> denied");
  });
  CHECK(out.find("bounce1@") == std::string::npos);
  CHECK(out.find("pat.smith@") == std::string::npos);
  CHECK(out.find("b***@example.com>: Recipient address rejected") != std::string::npos);
  CHECK(out.find("p***@example.org> denied") != std::string::npos);

  config.mask_addresses = false;  // for debugging, the operator can turn it off
  configure_logging(config);
  out = logged([] { log_info("550 <bounce1@example.com>"); });
  CHECK(out.find("<bounce1@example.com>") != std::string::npos);
  configure_logging(LogSettings{});
}

TEST_CASE("a line break in a logged value cannot forge a second log entry") {
  configure_logging(LogSettings{});
  std::string out = logged([] { log_error("bad value\nerror: forged entry\r"); });
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(out.find("bad value error: forged entry") != std::string::npos);
}

TEST_CASE("lines below the configured level are not written") {
  LogSettings config;
  config.level = LogLevel::warning;
  configure_logging(config);
  std::string out = logged([] {
    log_info("not shown");
    log_warning("shown");
  });
  CHECK(out.find("not shown") == std::string::npos);
  CHECK(out.find("warning: shown") != std::string::npos);
  configure_logging(LogSettings{});
}
