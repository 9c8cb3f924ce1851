// The dispatcher: on the daemon's event loop, it keeps a buffer of claimed messages per recipient
// domain, hands them to idle senders as the throttle and the circuit breaker allow (round-robin
// over domains, so one slow domain never holds back the others), turns each result into the
// store's outcome with the retry policy, and claims more as the buffer drains. It never blocks:
// the store and SMTP work happen on their own threads.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "circuit_breaker.h"
#include "config.h"
#include "dispatch_stats.h"
#include "sender_pool.h"
#include "store_worker.h"
#include "throttle.h"

namespace bulkmail {

class Dispatcher {
 public:
  Dispatcher(boost::asio::io_context& io, std::shared_ptr<const Config> config, StoreWorker& store,
             SenderPool& senders, std::string owner);

  void start();
  // A result from a sender, from any thread. Results arriving together are handled in one turn
  // of the loop: a sender wakes the loop only when no result is waiting already.
  void post_result(JobResult result);
  // SIGHUP: new rates, caps and templates (the senders are told separately).
  void reload(std::shared_ptr<const Config> config);
  // SIGTERM: stop claiming, hand back what is buffered, let in-flight deliveries finish within the
  // grace period (then abort them), and call `done` once nothing is in flight.
  void shutdown(std::function<void()> done);

  const DispatchStats& stats() const { return stats_; }

 private:
  void on_result(JobResult result);
  void drain_results();
  void sweep_paused_domains();
  void arm_sweep();
  void pump();
  void maybe_claim();
  void on_claimed(std::vector<ClaimedMessage> messages);
  void release(const ClaimedMessage& m, UnixMillis next_attempt_at, const std::string& why);
  void wake_at(Micros at);
  void set_paused(bool paused, const std::string& reason);
  void finish_if_drained();
  std::size_t buffer_target() const;
  Micros mono_now() const;

  boost::asio::io_context& io_;
  std::shared_ptr<const Config> config_;
  StoreWorker& store_;
  SenderPool& senders_;
  std::string owner_;
  Throttle throttle_;
  CircuitBreaker breaker_;

  std::map<std::string, std::deque<ClaimedMessage>> buffer_;  // by domain
  std::string last_domain_;                                   // round-robin position
  std::vector<int> idle_;                                     // free job places, by sender index
  std::size_t buffered_ = 0;
  bool claim_pending_ = false;
  bool queue_empty_ = false;  // the last claim found nothing due
  bool stopping_ = false;
  std::function<void()> on_drained_;

  std::mutex results_mu_;
  std::vector<JobResult> results_;  // posted by senders, drained on the loop

  boost::asio::steady_timer wake_timer_;
  Micros wake_at_ = 0;
  boost::asio::steady_timer claim_timer_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer grace_timer_;
  DispatchStats stats_;
};

}  // namespace bulkmail
