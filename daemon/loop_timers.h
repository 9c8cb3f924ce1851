// The event loop's two heartbeats: WATCHDOG=1 to systemd, sent from the loop itself so that a
// stalled loop stops sending it and systemd restarts the daemon; and the dispatcher's numbers, as
// STATUS= every 5 s and in the log every minute, with the once-a-minute work beside them.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <string>

#include "notifier.h"

namespace bulkmail {

class LoopTimers {
 public:
  static constexpr std::chrono::seconds kStatusEvery{5};
  static constexpr int kLogEvery = 12;  // status lines: once a minute

  // `status` gives the line to report; `every_tick` runs with it, every kStatusEvery;
  // `every_minute` once a minute. All are called on the loop.
  LoopTimers(boost::asio::io_context& io, Notifier& notifier, std::function<std::string()> status,
             std::function<void()> every_tick, std::function<void()> every_minute);
  // Arms both (the watchdog only when systemd asked for one).
  void start();

 private:
  void arm_watchdog();
  void arm_status();

  Notifier& notifier_;
  std::function<std::string()> status_;
  std::function<void()> every_tick_;
  std::function<void()> every_minute_;
  boost::asio::steady_timer watchdog_;
  boost::asio::steady_timer status_timer_;
  int ticks_ = 0;
};

}  // namespace bulkmail
