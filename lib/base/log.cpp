#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "base/address.h"
#include "base/clock.h"
#include "base/text.h"

namespace bulkmail {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<bool> g_mask{true};
const LogDestination g_destination =
    std::getenv("JOURNAL_STREAM") != nullptr ? LogDestination::journal : LogDestination::plain;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

int syslog_priority(LogLevel l) {
  switch (l) {
    case LogLevel::debug:
      return 7;
    case LogLevel::info:
      return 6;
    case LogLevel::warning:
      return 4;
    case LogLevel::error:
      return 3;
  }
  return 6;
}

}  // namespace

void append_log_text(std::string& out, std::string_view message, bool mask_addresses) {
  // With masking on, no address reaches a log line, whatever quoted it: bulkmail's own fields
  // are masked already, but relays quote recipients in their replies and errors quote input.
  std::string masked;
  if (mask_addresses && message.find('@') != std::string_view::npos) {
    masked = mask_addresses_in(message);
    message = masked;
  }
  // One event, one line: a value with a line break must not forge a second log entry.
  // Nor may it send a terminal escape (file names, relays' replies and reports are anyone's
  // bytes): every other control character but the tab shows as '?'.
  append_printable_line(out, message, ' ');
}

std::string log_text(std::string_view message) {
  std::string out;
  append_log_text(out, message, g_mask);
  return out;
}

void configure_logging(const LogSettings& config) {
  g_level = static_cast<int>(config.level);
  g_mask = config.mask_addresses;
}

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

std::string format_log_line(LogLevel level, std::string_view message, LogDestination destination,
                            bool mask_addresses, UnixMillis now) {
  std::string line;
  line.reserve(message.size() + 48);
  if (destination == LogDestination::journal) {
    line += '<';
    line += static_cast<char>('0' + syslog_priority(level));
    line += '>';
  } else {
    line += format_iso8601(now);
    line += ' ';
    line += level_name(level);
    line += ": ";
  }
  append_log_text(line, message, mask_addresses);
  line += '\n';
  return line;
}

void log(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  // journald stamps lines itself: the clock is read only for the plain form.
  std::string line = format_log_line(level, message, g_destination, g_mask,
                                     g_destination == LogDestination::journal ? 0 : now_millis());
  // One write() per line keeps lines from different threads whole.
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}

std::string log_address(std::string_view address) {
  return g_mask ? mask_address(address) : std::string(address);
}

}  // namespace bulkmail
