#include "loop_timers.h"

#include "base/log.h"

namespace bulkmail {

LoopTimers::LoopTimers(boost::asio::io_context& io, Notifier& notifier,
                       std::function<std::string()> status, std::function<void()> every_tick,
                       std::function<void()> every_minute)
    : notifier_(notifier),
      status_(std::move(status)),
      every_tick_(std::move(every_tick)),
      every_minute_(std::move(every_minute)),
      watchdog_(io),
      status_timer_(io) {}

void LoopTimers::start() {
  if (notifier_.watchdog_interval().count() > 0) arm_watchdog();
  arm_status();
}

void LoopTimers::arm_watchdog() {
  watchdog_.expires_after(notifier_.watchdog_interval());
  watchdog_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    notifier_.watchdog();
    arm_watchdog();
  });
}

void LoopTimers::arm_status() {
  status_timer_.expires_after(kStatusEvery);
  status_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    std::string line = status_();
    notifier_.status(line);
    if (every_tick_) every_tick_();
    if (++ticks_ % kLogEvery == 0) {
      log_info(line);
      if (every_minute_) every_minute_();
    }
    arm_status();
  });
}

}  // namespace bulkmail
