// Logging: one line per event on stderr, with a level. Under systemd (JOURNAL_STREAM set) lines
// carry a <N> priority prefix and no timestamp, since journald adds its own. Addresses go through
// log_address(), which masks them unless the operator turned masking off. Secrets are never
// passed here.
#pragma once

#include <string>
#include <string_view>

#include "base/clock.h"

namespace bulkmail {

enum class LogLevel { debug, info, warning, error };

// What the config's `logging` block sets (config.h's LoggingConfig).
struct LogSettings {
  LogLevel level = LogLevel::info;
  bool mask_addresses = true;  // logs show j***@example.com; turn off only for debugging
};

// Sets the level and masking. Safe to call again on reload.
void configure_logging(const LogSettings& settings);

void log(LogLevel level, std::string_view message);
inline void log_debug(std::string_view m) { log(LogLevel::debug, m); }
inline void log_info(std::string_view m) { log(LogLevel::info, m); }
inline void log_warning(std::string_view m) { log(LogLevel::warning, m); }
inline void log_error(std::string_view m) { log(LogLevel::error, m); }
bool log_enabled(LogLevel level);

// `message` as log() writes it, without level or time: addresses masked unless the operator
// turned masking off, line breaks as spaces, other control characters as '?'. For a log of another
// kind (syslog), or a line on stderr.
std::string log_text(std::string_view message);
// The same, appended to `out`, masked as `mask_addresses` says.
void append_log_text(std::string& out, std::string_view message, bool mask_addresses);

// The form of `address` that may appear in a log line.
std::string log_address(std::string_view address);

// Where stderr goes: to journald (JOURNAL_STREAM was set when the process started), or elsewhere.
enum class LogDestination { plain, journal };

// The line log() writes for `message` at `level`, ending in '\n'. For journald: "<N>" and the
// message, N the syslog priority (3 error, 4 warning, 6 info, 7 debug); otherwise `now` (ISO 8601),
// the level's name, ": " and the message. With `mask_addresses`, every address in the message is
// masked (mask_addresses_in); a line break in it (CR or LF) becomes a space, any other control
// character but the tab a '?'.
std::string format_log_line(LogLevel level, std::string_view message, LogDestination destination,
                            bool mask_addresses, UnixMillis now);

}  // namespace bulkmail
