// The dispatcher: it keeps a buffer of claimed messages per recipient domain and decides which
// message goes out next, as the throttle and the circuit breaker allow (round-robin over domains,
// so one slow domain never holds back the others). It runs on the sender that asks for work
// (JobSource::next), under one lock: a sender that finishes a message takes note of its result and
// picks its next one in the same call, with no other thread in between. Claims run on the store
// worker; the event loop keeps the dispatcher's timers (idle polling, the paused-domain sweep, the
// shutdown grace period). A sender with nothing to send sleeps; one of them, at most, sleeps with
// a deadline (the next moment the throttle or breaker allows a send) and wakes the others.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "delivery/circuit_breaker.h"
#include "delivery/dispatch_stats.h"
#include "delivery/job.h"
#include "delivery/quota_worker.h"
#include "delivery/throttle.h"
#include "store/store_worker.h"
#include "store/suppression_watch.h"

namespace bulkmail {

class Dispatcher final : public JobSource {
 public:
  // `watch`, if given, is told the claim time of the oldest message that may still be delivered
  // (its horizon). `time` drives the throttle, the breaker, the daily count and the senders'
  // timed waits; the watch's horizon and a job's claimed_at stay on steady_clock, the watch's
  // own clock.
  // `quota`, when several daemons share the database: the throttle is the cluster's
  // (cluster_quota.h), its grants asked for through it. It must outlive the dispatcher's last
  // exchange: stop it before the dispatcher goes. `claimer`, when given, makes the claims on a
  // connection of its own (PostgreSQL), so that a claim never holds up the commit of outcomes
  // the senders wait for; by default `store` claims too (SQLite has one writer).
  Dispatcher(boost::asio::io_context& io, std::shared_ptr<const Config> config, StoreWorker& store,
             std::string owner, SuppressionWatch* watch = nullptr, TimeSource& time = system_time(),
             QuotaWorker* quota = nullptr, StoreWorker* claimer = nullptr);

  // On the loop: records that dispatch runs and makes the first claim.
  void start();
  std::optional<Job> next(int sender, const JobResult* finished) override;
  void close() override;
  // SIGHUP, on the loop: new rates, caps and retry policy (the senders are told separately).
  void reload(std::shared_ptr<const Config> config);
  // SIGTERM, on the loop: stop claiming, hand back what is buffered, let deliveries in flight
  // finish within the grace period (then call `abort`), and post `done` to the loop once nothing
  // is in flight.
  void shutdown(std::function<void()> done, std::function<void()> abort);

  DispatchStats stats() const;

  // The store worker's word on the database (StoreWorker::on_health): `trouble` when it stopped
  // answering, empty once it answers again after `away`. Dispatch shows as paused meanwhile (in
  // `status` once it can be written, and /healthz), and claims again at once when it is back.
  void database_health(const std::string& trouble, std::chrono::milliseconds away);

 private:
  // All below with mu_ held.
  void account(const JobResult& result, Micros now);
  std::optional<Job> pick(Micros now, Micros& wake);
  void maybe_claim();
  // Whether the daily limit holds sending now; pauses (and resumes) dispatch as it changes.
  bool hold_for_daily_limit();
  std::string daily_limit_text();
  void on_claimed(std::vector<ClaimedMessage> messages);
  void release(const Job& job, UnixMillis next_attempt_at, const std::string& why);
  // A message of the claim made at `claimed_at` will not be delivered by this daemon any more.
  void settled(Micros claimed_at);
  void update_horizon();
  void set_paused(bool paused, const std::string& reason);
  // "the relay is not accepting mail (...)", with the breaker's latest reason.
  std::string relay_pause_text() const;
  // Another reason stopped holding dispatch: paused for the relay if the breaker is not closed,
  // else resumed with `note` as the state's detail.
  void relay_pause_or_resume(const std::string& note);
  void finish_if_drained();
  void sweep_paused_domains();
  std::size_t buffer_target() const;
  // Shared throttle: asks the cluster for what the throttle misses (one exchange at a time).
  void maybe_ask(bool closing = false);
  // Loop only.
  void arm_sweep();
  void arm_idle_poll();

  Micros mono_now() { return time_.now_micros(); }
  UnixMillis wall_now() { return time_.now_millis(); }
  // steady_clock, the suppression watch's clock: for the horizon and a job's claimed_at.
  static Micros steady_now();

  boost::asio::io_context& io_;
  StoreWorker& store_;
  StoreWorker& claimer_;
  const std::string owner_;
  TimeSource& time_;
  QuotaWorker* quota_;

  mutable std::mutex mu_;
  std::condition_variable work_;  // a job may be available, or stop
  std::shared_ptr<const Config> config_;
  SuppressionWatch* watch_;
  Throttle throttle_;
  CircuitBreaker breaker_;
  MessageId probe_ = 0;                            // the half-open probe's message while it is out
  std::map<std::string, std::deque<Job>> buffer_;  // by domain
  // Messages buffered or in flight, by the time their claim was asked for; and that time for the
  // claim under way.
  std::map<Micros, std::size_t> outstanding_;
  Micros claim_asked_at_ = 0;
  std::string last_domain_;  // round-robin position
  std::size_t buffered_ = 0;
  int waiting_ = 0;        // senders asleep in next()
  Micros timed_wake_ = 0;  // the deadline one of them sleeps until, 0 if none does
  bool claim_pending_ = false;
  bool held_by_daily_limit_ = false;
  bool database_away_ = false;
  bool queue_empty_ = false;  // the last claim found nothing due
  bool stopping_ = false;
  bool closed_ = false;
  std::function<void()> on_drained_;
  DispatchStats stats_;

  // The loop's own.
  boost::asio::steady_timer claim_timer_;
  boost::asio::steady_timer sweep_timer_;
  boost::asio::steady_timer grace_timer_;
};

}  // namespace bulkmail
