#include "delivery/dispatcher.h"

#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdio>

#include "base/log.h"

namespace bulkmail {
namespace asio = boost::asio;

namespace {

constexpr auto kIdlePoll = std::chrono::milliseconds(200);  // how often an empty queue is looked at
constexpr Micros kLongPause = 10'000'000;  // a domain paused longer than this hands its buffer back

std::string domain_of(const std::string& address) { return address.substr(address.rfind('@') + 1); }

}  // namespace

Dispatcher::Dispatcher(asio::io_context& io, std::shared_ptr<const Config> config,
                       StoreWorker& store, std::string owner, SuppressionWatch* watch,
                       TimeSource& time, QuotaWorker* quota, StoreWorker* claimer)
    : io_(io),
      store_(store),
      claimer_(claimer ? *claimer : store),
      owner_(std::move(owner)),
      time_(time),
      quota_(quota),
      config_(std::move(config)),
      watch_(watch),
      throttle_(config_->throttle, config_->smtp.max_connections, mono_now(),
                quota ? Throttle::Scope::shared : Throttle::Scope::daemon),
      claim_timer_(io),
      sweep_timer_(io),
      grace_timer_(io) {}

Micros Dispatcher::steady_now() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

DispatchStats Dispatcher::stats() const {
  std::lock_guard lock(mu_);
  DispatchStats s = stats_;
  s.buffered = static_cast<std::int64_t>(buffered_);
  s.database_away = database_away_;
  return s;
}

void Dispatcher::start() {
  arm_sweep();
  UnixMillis now = wall_now();
  store_.run([this, day_start = now / 86'400'000 * 86'400'000, now](Store& s) {
    std::int64_t sent_today = s.count_sent_since(day_start);
    s.set_dispatch_state({"running", "", now, "", owner_});
    std::lock_guard lock(mu_);
    throttle_.set_sent_today(sent_today, now);
    maybe_claim();
  });
}

void Dispatcher::reload(std::shared_ptr<const Config> config) {
  std::lock_guard lock(mu_);
  config_ = std::move(config);
  throttle_.reconfigure(config_->throttle, config_->smtp.max_connections, mono_now());
  maybe_claim();  // a raised daily limit sends at once
  work_.notify_all();
}

std::optional<Job> Dispatcher::next(int /*sender*/, const JobResult* finished) {
  std::unique_lock lock(mu_);
  if (finished) account(*finished, mono_now());
  while (true) {
    if (closed_ || stopping_) {
      finish_if_drained();
      return std::nullopt;
    }
    Micros now = mono_now();
    Micros wake = 0;
    if (auto job = pick(now, wake)) {
      ++stats_.in_flight;
      // More may be sendable now: let another sleeping sender look.
      if (buffered_ > 0 && waiting_ > 0) work_.notify_one();
      maybe_claim();
      maybe_ask();
      return job;
    }
    maybe_claim();
    maybe_ask();
    ++waiting_;
    if (wake && (timed_wake_ == 0 || wake < timed_wake_ || timed_wake_ <= now)) {
      // This sender keeps the time: the others sleep until it (or a claim) wakes them.
      timed_wake_ = wake;
      time_.wait_until(work_, lock, wake);
      if (timed_wake_ == wake) timed_wake_ = 0;
    } else {
      work_.wait(lock);
    }
    --waiting_;
  }
}

void Dispatcher::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  work_.notify_all();
}

std::optional<Job> Dispatcher::pick(Micros now, Micros& wake) {
  auto want_wake = [&](Micros t) {
    if (t > now && (wake == 0 || t < wake)) wake = t;
  };
  if (buffered_ == 0) return std::nullopt;
  bool probe = breaker_.state(now) == CircuitBreaker::State::half_open;
  if (!breaker_.allow(now)) {
    want_wake(breaker_.open_until());
    return std::nullopt;
  }
  // Round-robin: the first domain after the last one served that may send now.
  UnixMillis wall = wall_now();
  auto it = buffer_.upper_bound(last_domain_);
  auto chosen = buffer_.end();
  for (std::size_t n = 0; n < buffer_.size(); ++n, ++it) {
    if (it == buffer_.end()) it = buffer_.begin();
    auto gate = throttle_.check(it->first, now, wall);
    if (gate.ok) {
      chosen = it;
      break;
    }
    if (gate.retry_at) want_wake(gate.retry_at);
  }
  if (chosen == buffer_.end()) {
    breaker_.cancel_probe();  // allow() may have granted a probe that nothing used
    return std::nullopt;
  }
  last_domain_ = chosen->first;
  Job job = std::move(chosen->second.front());
  if (probe) probe_ = job.message.id;
  chosen->second.pop_front();
  if (chosen->second.empty()) buffer_.erase(chosen);
  --buffered_;
  throttle_.started(job.domain, now, wall);
  return job;
}

void Dispatcher::account(const JobResult& r, Micros now) {
  // The sender already recorded the outcome; here only the dispatcher's own state changes.
  --stats_.in_flight;
  const ClaimedMessage& m = r.message;
  bool temporary = false;
  if (r.kind == JobResult::Kind::delivered) {
    const Classification& c = r.classification;
    ++stats_.replies_by_class[c.code / 100];
    double ms = static_cast<double>(r.latency_us) / 1000.0;
    std::size_t b = 0;
    while (b < DispatchStats::kLatencyBoundsMs.size() && ms > DispatchStats::kLatencyBoundsMs[b])
      ++b;
    ++stats_.latency_buckets[b];
    stats_.latency_sum_ms += ms;
    bool probe = probe_ && m.id == probe_;
    if (c.relay_trouble) {
      // Said when the breaker opens (at most once per delay, with the latest reason); a
      // delivery begun before it opened says nothing. A pause for the database or the daily
      // limit keeps its reason: the relay's shows when that one clears (relay_pause_or_resume).
      if (breaker_.record_failure(now, c.reply, probe) &&
          !(held_by_daily_limit_ || database_away_)) {
        set_paused(true, relay_pause_text());
      }
    } else {
      breaker_.record_success(now, probe);
      if (stats_.paused && !held_by_daily_limit_ && !database_away_ &&
          breaker_.state(now) == CircuitBreaker::State::closed) {
        set_paused(false, "");
      }
    }
    temporary =
        c.verdict == Verdict::deferred && c.code >= 400 && c.code < 500 && !c.recipient_only;
    if (c.verdict == Verdict::bounced) {
      ++stats_.bounced;
      log_info("hard bounce from " + log_address(m.recipient) + ": " + c.reply);
    } else if (c.verdict == Verdict::rejected) {
      log_warning("message " + std::to_string(m.id) + " refused by the relay: " + c.reply);
    }
  } else if (r.kind == JobResult::Kind::compose_failed) {
    log_warning("message " + std::to_string(m.id) + " failed: " + r.detail);
  }
  if (probe_ && m.id == probe_) {
    // However the probe ended, it is settled: a delivery above said whether the relay works;
    // anything else (suppressed, not composed, aborted) said nothing, so the next message probes.
    if (r.kind != JobResult::Kind::delivered) breaker_.cancel_probe();
    probe_ = 0;
  }
  switch (r.recorded_state) {
    case MessageState::sent:
      ++stats_.sent;
      break;
    case MessageState::deferred:
      ++stats_.deferred;
      break;
    case MessageState::failed:
      ++stats_.failed;
      break;
    case MessageState::suppressed:
      ++stats_.suppressed;
      break;
    case MessageState::queued:
      ++stats_.released;
      break;
    default:
      break;
  }
  UnixMillis wall = wall_now();
  throttle_.finished(r.domain, temporary, r.recorded_state == MessageState::sent, now, wall);
  stats_.sent_today = throttle_.sent_today(wall);
  settled(r.claimed_at);
}

void Dispatcher::settled(Micros claimed_at) {
  auto it = outstanding_.find(claimed_at);
  if (it == outstanding_.end()) return;
  if (--it->second == 0) {
    bool oldest = it == outstanding_.begin();
    outstanding_.erase(it);
    if (oldest) update_horizon();
  }
}

void Dispatcher::update_horizon() {
  if (!watch_) return;
  std::optional<Micros> oldest;
  if (!outstanding_.empty()) oldest = outstanding_.begin()->first;
  if (claim_pending_ && (!oldest || claim_asked_at_ < *oldest)) oldest = claim_asked_at_;
  if (!oldest) {
    watch_->set_horizon(std::nullopt);
  } else {
    watch_->set_horizon(SuppressionWatch::Clock::time_point(std::chrono::microseconds(*oldest)));
  }
}

std::size_t Dispatcher::buffer_target() const {
  // Enough to keep every connection busy, and about two seconds of sending at the global rate,
  // but no more: claimed messages hold leases, and a suppression added meanwhile should win.
  auto by_rate = static_cast<std::size_t>(config_->throttle.messages_per_second * 2);
  std::size_t target =
      std::max<std::size_t>(2 * static_cast<std::size_t>(config_->smtp.max_connections), by_rate);
  return std::min<std::size_t>(target, static_cast<std::size_t>(config_->daemon.claim_batch) * 2);
}

std::string Dispatcher::daily_limit_text() {
  return "daily limit reached: " + std::to_string(throttle_.daily_limit()) + " of " +
         std::to_string(throttle_.daily_limit()) + " sent today, resumes at 00:00 UTC";
}

bool Dispatcher::hold_for_daily_limit() {
  // Called for every job handed out: without a limit (the default) it costs one comparison.
  stats_.daily_limit = throttle_.daily_limit();
  if (stats_.daily_limit == 0 && !held_by_daily_limit_) return false;
  UnixMillis wall = wall_now();
  stats_.sent_today = throttle_.sent_today(wall);
  bool reached = throttle_.daily_limit_reached(wall);
  if (reached && !held_by_daily_limit_) {
    held_by_daily_limit_ = true;
    set_paused(true, daily_limit_text());
  } else if (!reached && held_by_daily_limit_) {
    // A new day, or a higher limit (SIGHUP): the messages handed back are due already.
    held_by_daily_limit_ = false;
    relay_pause_or_resume("");
    queue_empty_ = false;
  }
  return reached;
}

void Dispatcher::maybe_claim() {
  // While the day's messages are all sent, nothing more is claimed: what is queued stays due,
  // so a new day or a raised limit sends it at once.
  if (hold_for_daily_limit()) return;
  // After a claim that found nothing (or failed), only the idle timer asks again: otherwise every
  // request for work would claim, and an idle daemon would spin on SQLite.
  if (stopping_ || closed_ || claim_pending_ || queue_empty_) return;
  std::size_t target = buffer_target();
  if (buffered_ >= target / 2) return;
  std::size_t want = std::min<std::size_t>(target - buffered_,
                                           static_cast<std::size_t>(config_->daemon.claim_batch));
  claim_pending_ = true;
  claim_asked_at_ = steady_now();
  update_horizon();
  claimer_.claim(owner_, want, UnixMillis{config_->daemon.lease_seconds} * 1000,
                 [this](std::vector<ClaimedMessage> claimed) { on_claimed(std::move(claimed)); });
}

void Dispatcher::on_claimed(std::vector<ClaimedMessage> messages) {
  // On the store worker's thread.
  std::lock_guard lock(mu_);
  claim_pending_ = false;
  if (stopping_ || closed_) {
    for (auto& m : messages) {
      ++stats_.released;
      store_.release({m.id, MessageState::queued, 0, "shutting down", wall_now(), "",
                      BounceClass::unknown, m.lease_owner, m.attempts});
    }
    update_horizon();
    finish_if_drained();
    return;
  }
  queue_empty_ = messages.empty();
  if (!messages.empty()) outstanding_[claim_asked_at_] += messages.size();
  for (auto& m : messages) {
    std::string domain = domain_of(m.recipient);
    buffer_[domain].push_back({std::move(m), domain, claim_asked_at_});
    ++buffered_;
  }
  update_horizon();
  if (queue_empty_) {
    // Nothing due: look again shortly (the CLI or the API may queue more at any time).
    asio::post(io_, [this] { arm_idle_poll(); });
  } else {
    work_.notify_all();
    maybe_claim();
  }
}

void Dispatcher::database_health(const std::string& trouble, std::chrono::milliseconds away) {
  std::lock_guard lock(mu_);
  if (!trouble.empty()) {
    database_away_ = true;
    set_paused(true, "the database is not answering (" + trouble +
                         "); deliveries under way finish and their outcomes wait in memory; "
                         "reconnecting");
    return;
  }
  database_away_ = false;
  if (held_by_daily_limit_) {
    set_paused(true, daily_limit_text());
  } else {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(away.count()) / 1000);
    relay_pause_or_resume(std::string("the database was not answering for ") + seconds +
                          " s, until " + format_iso8601(wall_now()));
  }
  queue_empty_ = false;
  maybe_claim();
}

void Dispatcher::maybe_ask(bool closing) {
  if (!quota_) return;
  auto ask = throttle_.ask(mono_now(), wall_now(), closing);
  if (!ask) return;
  quota_->exchange(std::move(*ask),
                   [this](const QuotaAsk& asked, std::optional<QuotaAnswer> answer) {
                     // On the quota worker's thread.
                     std::lock_guard lock(mu_);
                     if (answer) {
                       throttle_.answered(asked, *answer, mono_now());
                     } else {
                       throttle_.ask_failed(asked, mono_now());
                     }
                     work_.notify_all();
                     // Shutting down: what the closing ask could not take back (an exchange was
                     // under way) goes back now.
                     maybe_ask(stopping_ || closed_);
                   });
}

void Dispatcher::arm_idle_poll() {
  claim_timer_.expires_after(kIdlePoll);
  claim_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    std::lock_guard lock(mu_);
    queue_empty_ = false;
    maybe_claim();
  });
}

void Dispatcher::release(const Job& job, UnixMillis next_attempt_at, const std::string& why) {
  ++stats_.released;
  store_.release({job.message.id, MessageState::queued, 0, why, next_attempt_at, "",
                  BounceClass::unknown, job.message.lease_owner, job.message.attempts});
  settled(job.claimed_at);
}

void Dispatcher::sweep_paused_domains() {
  // Domains paused for long hand their buffer back instead of holding leases idle. Once a second,
  // not per message: the buffer may hold thousands of domains.
  Micros now = mono_now();
  UnixMillis wall = wall_now();
  bool daily = throttle_.daily_limit_reached(wall);
  for (auto it = buffer_.begin(); it != buffer_.end();) {
    auto gate = throttle_.check(it->first, now, wall);
    if (!gate.ok && gate.daily_limit && daily && !it->second.empty()) {
      // Handed back due now: nothing is claimed until the limit allows, and then at once.
      for (const auto& job : it->second) release(job, wall, daily_limit_text());
      buffered_ -= it->second.size();
      it = buffer_.erase(it);
    } else if (!gate.ok && gate.retry_at - now > kLongPause && !it->second.empty()) {
      UnixMillis resume = wall + (gate.retry_at - now) / 1000;
      for (const auto& job : it->second)
        release(job, resume, "domain " + it->first + " is slowed down");
      buffered_ -= it->second.size();
      it = buffer_.erase(it);
    } else {
      ++it;
    }
  }
  maybe_claim();
  maybe_ask();  // slots idle for a second go back to the cluster
}

void Dispatcher::arm_sweep() {
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      sweep_paused_domains();
    }
    arm_sweep();
  });
}

std::string Dispatcher::relay_pause_text() const {
  return "the relay is not accepting mail (" + breaker_.reason() + "); retrying by itself";
}

void Dispatcher::relay_pause_or_resume(const std::string& note) {
  // The breaker may have opened while another reason held dispatch: it still holds it.
  if (breaker_.state(mono_now()) != CircuitBreaker::State::closed) {
    set_paused(true, relay_pause_text());
  } else {
    set_paused(false, note);
  }
}

void Dispatcher::set_paused(bool paused, const std::string& reason) {
  if (stats_.paused == paused && stats_.pause_reason == reason) return;
  stats_.paused = paused;
  stats_.pause_reason = reason;
  UnixMillis now = wall_now();
  DispatchState st{paused ? "paused" : "running", reason, now, "", owner_};
  if (paused) {
    log_warning("dispatch paused: " + reason);
  } else {
    log_info("dispatch resumed");
  }
  store_.run([st](Store& s) { s.set_dispatch_state(st); });
}

void Dispatcher::shutdown(std::function<void()> done, std::function<void()> abort) {
  claim_timer_.cancel();
  sweep_timer_.cancel();
  grace_timer_.expires_after(std::chrono::seconds(config_->daemon.shutdown_grace_seconds));
  grace_timer_.async_wait([this, abort = std::move(abort)](const boost::system::error_code& ec) {
    if (ec) return;
    log_warning("shutdown grace period over: aborting " + std::to_string(stats().in_flight) +
                " deliveries");
    abort();
  });
  std::lock_guard lock(mu_);
  stopping_ = true;
  on_drained_ = std::move(done);
  UnixMillis wall = wall_now();
  for (auto& [domain, q] : buffer_) {
    for (const auto& job : q) release(job, wall, "shutting down");
  }
  buffer_.clear();
  buffered_ = 0;
  work_.notify_all();  // sleeping senders stop
  maybe_ask(true);     // the cluster's slots and places go back to the others
  finish_if_drained();
}

void Dispatcher::finish_if_drained() {
  if (!stopping_ || stats_.in_flight > 0 || claim_pending_ || !on_drained_) return;
  // On the loop: the grace timer is the loop's.
  asio::post(io_, [this, done = std::move(on_drained_)] {
    grace_timer_.cancel();
    done();
  });
  on_drained_ = nullptr;
}

}  // namespace bulkmail
