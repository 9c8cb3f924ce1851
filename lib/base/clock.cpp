#include "base/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace bulkmail {

UnixMillis now_millis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {
class SystemTime final : public TimeSource {
 public:
  Micros now_micros() override {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
  }
  UnixMillis now_millis() override { return bulkmail::now_millis(); }
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  Micros deadline) override {
    cv.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::microseconds(deadline)));
  }
};
}  // namespace

TimeSource& system_time() {
  static SystemTime t;
  return t;
}

std::string format_iso8601(UnixMillis t) {
  std::time_t secs = static_cast<std::time_t>(t / 1000);
  int ms = static_cast<int>(t % 1000);
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

}  // namespace bulkmail
