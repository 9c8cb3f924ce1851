#include "base/log.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "captured_stderr.h"
#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// What log() wrote to stderr while `fn` ran.
template <typename Fn>
std::string logged(Fn fn) {
  return captured_stderr(fn);
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
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find("bad value error: forged entry") != std::string::npos);
}

TEST_CASE("every CR and LF in a message becomes a space, in both forms of the line") {
  struct Row {
    const char* in;
    const char* out;
  };
  for (Row r : {
           Row{"bad value\nerror: forged entry", "bad value error: forged entry"},
           Row{"progress 10%\roverwritten", "progress 10% overwritten"},
           Row{"crlf\r\nnext", "crlf  next"},
           Row{"\r\n", "  "},
           Row{"ends in a break\n", "ends in a break "},
       }) {
    CAPTURE(r.in);
    CHECK(format_log_line(LogLevel::error, r.in, LogDestination::plain, true, 0) ==
          std::string("1970-01-01T00:00:00.000Z error: ") + r.out + "\n");
    CHECK(format_log_line(LogLevel::error, r.in, LogDestination::journal, true, 0) ==
          std::string("<3>") + r.out + "\n");
  }
  // Nor a terminal escape, nor any other control character; a tab stays.
  CHECK(format_log_line(LogLevel::info, "new/\x1b[31mred\x7f\x01\tend", LogDestination::journal,
                        true, 0) == "<6>new/?[31mred??\tend\n");
  // For journald a forged line would carry a priority of its own: it stays inside the one line.
  CHECK(format_log_line(LogLevel::info, "ok\n<0>emergency", LogDestination::journal, true, 0) ==
        "<6>ok <0>emergency\n");
}

TEST_CASE("for journald a line starts with its level's syslog priority and has no timestamp") {
  struct Row {
    LogLevel level;
    const char* prefix;
  };
  for (Row r : {Row{LogLevel::error, "<3>"}, Row{LogLevel::warning, "<4>"},
                Row{LogLevel::info, "<6>"}, Row{LogLevel::debug, "<7>"}}) {
    CAPTURE(r.prefix);
    CHECK(format_log_line(r.level, "relay down", LogDestination::journal, true,
                          1'795'000'000'000) == std::string(r.prefix) + "relay down\n");
  }
}

TEST_CASE("elsewhere a line starts with the time and its level's name") {
  struct Row {
    LogLevel level;
    const char* name;
  };
  for (Row r : {Row{LogLevel::error, "error"}, Row{LogLevel::warning, "warning"},
                Row{LogLevel::info, "info"}, Row{LogLevel::debug, "debug"}}) {
    CAPTURE(r.name);
    CHECK(format_log_line(r.level, "relay down", LogDestination::plain, true, 1'795'000'000'123) ==
          "2026-11-18T11:06:40.123Z " + std::string(r.name) + ": relay down\n");
  }
}

TEST_CASE("log() writes the line for the destination its environment names") {
  configure_logging(LogSettings{});
  std::string out = logged([] { log_error("relay down"); });
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    CHECK(out == "<3>relay down\n");
  } else {
    // "2026-11-25T21:24:16.123Z error: relay down"
    REQUIRE(out.size() == 24 + std::string(" error: relay down\n").size());
    CHECK(out[10] == 'T');
    CHECK(out[23] == 'Z');
    CHECK(out.substr(24) == " error: relay down\n");
  }
}

TEST_CASE("with masking on, addresses quoted in a message are masked in both forms of the line") {
  struct Row {
    const char* in;
    const char* out;
  };
  for (Row r : {
           Row{"550 5.1.1 <bounce1@example.com>: Recipient address rejected",
               "550 5.1.1 <b***@example.com>: Recipient address rejected"},
           Row{"deferred pat.smith@example.org: 451 try later",
               "deferred p***@example.org: 451 try later"},
           Row{"from a@example.com to bob@example.net.",
               "from ***@example.com to b***@example.net."},
           Row{"j\xc3\xb6"
               "ran@example.se refused",
               "j***@example.se refused"},
           Row{"user@[192.0.2.1] unknown", "u***@[192.0.2.1] unknown"},
           Row{"no address here, nor @ here", "no address here, nor @ here"},
       }) {
    CAPTURE(r.in);
    CHECK(format_log_line(LogLevel::warning, r.in, LogDestination::journal, true, 0) ==
          std::string("<4>") + r.out + "\n");
    CHECK(format_log_line(LogLevel::warning, r.in, LogDestination::plain, true, 0) ==
          std::string("1970-01-01T00:00:00.000Z warning: ") + r.out + "\n");
    // With masking off (for debugging), the message is written as it is.
    CHECK(format_log_line(LogLevel::warning, r.in, LogDestination::journal, false, 0) ==
          std::string("<4>") + r.in + "\n");
  }
}

TEST_CASE("log_address masks an address unless masking is off") {
  configure_logging(LogSettings{});
  CHECK(log_address("jane@example.com") == "j***@example.com");
  CHECK(log_address("j@example.com") == "***@example.com");  // one character would be all of it
  CHECK(log_address("not an address") == "***");
  LogSettings off;
  off.mask_addresses = false;
  configure_logging(off);
  CHECK(log_address("jane@example.com") == "jane@example.com");
  configure_logging(LogSettings{});
  CHECK(log_address("jane@example.com") == "j***@example.com");  // and on again after a reload
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
