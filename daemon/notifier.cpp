#include "notifier.h"

#include <systemd/sd-daemon.h>

#include <ctime>

namespace bulkmail {

void Notifier::ready() { sd_notify(0, "READY=1"); }

void Notifier::reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long usec = static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%lld", usec);
}

void Notifier::stopping() { sd_notify(0, "STOPPING=1"); }

void Notifier::status(const std::string& text) { sd_notifyf(0, "STATUS=%s", text.c_str()); }

void Notifier::watchdog() { sd_notify(0, "WATCHDOG=1"); }

std::chrono::microseconds Notifier::watchdog_interval() const {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(usec / 2);
}

}  // namespace bulkmail
