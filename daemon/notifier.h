// The daemon's side of systemd's notify protocol (Type=notify) through libsystemd: READY=1,
// STATUS=, WATCHDOG=1, RELOADING=1 and STOPPING=1. Without NOTIFY_SOCKET every call is a no-op.
#pragma once

#include <chrono>
#include <string>

namespace bulkmail {

class Notifier {
 public:
  void ready();
  void reloading();
  void stopping();
  void status(const std::string& text);
  void watchdog();
  // How often to send WATCHDOG=1 (half of WATCHDOG_USEC), or zero when systemd asked for none.
  std::chrono::microseconds watchdog_interval() const;
};

}  // namespace bulkmail
