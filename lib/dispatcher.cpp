#include "dispatcher.h"

#include <boost/asio/post.hpp>

#include <chrono>

#include "log.h"

namespace bulkmail {
namespace asio = boost::asio;

namespace {

constexpr auto kIdlePoll = std::chrono::milliseconds(200);  // how often an empty queue is looked at
constexpr Micros kLongPause = 10'000'000;  // a domain paused longer than this hands its buffer back

std::string domain_of(const std::string& address) { return address.substr(address.rfind('@') + 1); }

}  // namespace

Dispatcher::Dispatcher(asio::io_context& io, std::shared_ptr<const Config> config,
                       StoreWorker& store, SenderPool& senders, std::string owner)
    : io_(io),
      config_(std::move(config)),
      store_(store),
      senders_(senders),
      owner_(std::move(owner)),
      throttle_(config_->throttle, config_->smtp.max_connections, mono_now()),
      wake_timer_(io),
      claim_timer_(io),
      sweep_timer_(io),
      grace_timer_(io) {
  // Each sender holds up to kJobsPerSender jobs: an index appears here once per free place.
  for (int k = 0; k < SenderPool::kJobsPerSender; ++k) {
    for (int i = senders_.size() - 1; i >= 0; --i) idle_.push_back(i);
  }
}

Micros Dispatcher::mono_now() const {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

void Dispatcher::sweep_paused_domains() {
  // Domains paused for long hand their buffer back instead of holding leases idle. Once a second,
  // not per message: the buffer may hold thousands of domains.
  Micros now = mono_now();
  UnixMillis wall = now_millis();
  for (auto it = buffer_.begin(); it != buffer_.end();) {
    auto gate = throttle_.check(it->first, now, wall);
    if (!gate.ok && gate.retry_at - now > kLongPause && !it->second.empty()) {
      UnixMillis resume = wall + (gate.retry_at - now) / 1000;
      for (const auto& m : it->second)
        release(m, resume, "domain " + it->first + " is slowed down");
      buffered_ -= it->second.size();
      it = buffer_.erase(it);
    } else {
      ++it;
    }
  }
  stats_.buffered = static_cast<std::int64_t>(buffered_);
}

void Dispatcher::arm_sweep() {
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    sweep_paused_domains();
    pump();
    arm_sweep();
  });
}

void Dispatcher::start() {
  arm_sweep();
  UnixMillis now = now_millis();
  store_.run([this, day_start = now / 86'400'000 * 86'400'000, now](Store& s) {
    std::int64_t sent_today = s.count_sent_since(day_start);
    s.set_dispatch_state({"running", "", now});
    asio::post(io_, [this, sent_today, now] {
      throttle_.set_sent_today(sent_today, now);
      maybe_claim();
    });
  });
}

void Dispatcher::reload(std::shared_ptr<const Config> config) {
  config_ = std::move(config);
  throttle_.reconfigure(config_->throttle, config_->smtp.max_connections, mono_now());
  pump();
}

std::size_t Dispatcher::buffer_target() const {
  // Enough to keep every connection busy, and about two seconds of sending at the global rate,
  // but no more: claimed messages hold leases, and a suppression added meanwhile should win.
  auto by_rate = static_cast<std::size_t>(config_->throttle.messages_per_second * 2);
  std::size_t target =
      std::max<std::size_t>(2 * static_cast<std::size_t>(config_->smtp.max_connections), by_rate);
  return std::min<std::size_t>(target, static_cast<std::size_t>(config_->daemon.claim_batch) * 2);
}

void Dispatcher::maybe_claim() {
  // After a claim that found nothing (or failed), only the idle timer asks again: otherwise every
  // turn of the loop would claim, and an idle daemon would spin on SQLite.
  if (stopping_ || claim_pending_ || queue_empty_) return;
  std::size_t target = buffer_target();
  if (buffered_ >= target / 2) return;
  std::size_t want = std::min<std::size_t>(target - buffered_,
                                           static_cast<std::size_t>(config_->daemon.claim_batch));
  claim_pending_ = true;
  store_.claim(owner_, want, UnixMillis{config_->daemon.lease_seconds} * 1000,
               [this](std::vector<ClaimedMessage> claimed) {
                 asio::post(io_,
                            [this, c = std::move(claimed)]() mutable { on_claimed(std::move(c)); });
               });
}

void Dispatcher::on_claimed(std::vector<ClaimedMessage> messages) {
  claim_pending_ = false;
  if (stopping_) {
    for (const auto& m : messages) release(m, now_millis(), "shutting down");
    finish_if_drained();
    return;
  }
  queue_empty_ = messages.empty();
  for (auto& m : messages) {
    std::string domain = domain_of(m.recipient);
    buffer_[domain].push_back(std::move(m));
    ++buffered_;
  }
  stats_.buffered = static_cast<std::int64_t>(buffered_);
  if (queue_empty_) {
    // Nothing due: look again shortly (the CLI or the API may queue more at any time).
    claim_timer_.expires_after(kIdlePoll);
    claim_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      queue_empty_ = false;
      maybe_claim();
    });
  }
  pump();
  if (!queue_empty_) maybe_claim();
}

void Dispatcher::release(const ClaimedMessage& m, UnixMillis next_attempt_at,
                         const std::string& why) {
  ++stats_.released;
  store_.record({m.id, MessageState::queued, 0, why, next_attempt_at, "", false}, senders_.size(),
                0);
}

void Dispatcher::pump() {
  if (stopping_) return;
  Micros now = mono_now();
  UnixMillis wall = now_millis();
  Micros next_wake = 0;
  auto want_wake = [&](Micros t) {
    if (t > now && (next_wake == 0 || t < next_wake)) next_wake = t;
  };
  while (!idle_.empty() && buffered_ > 0) {
    if (!breaker_.allow(now)) {
      want_wake(breaker_.open_until());
      break;
    }
    // Round-robin: the first domain after the last one served that may send now.
    auto start = buffer_.upper_bound(last_domain_);
    std::map<std::string, std::deque<ClaimedMessage>>::iterator chosen = buffer_.end();
    for (std::size_t n = 0; n < buffer_.size(); ++n, ++start) {
      if (start == buffer_.end()) start = buffer_.begin();
      if (start->second.empty()) continue;
      auto gate = throttle_.check(start->first, now, wall);
      if (gate.ok) {
        chosen = start;
        break;
      }
      if (gate.retry_at) want_wake(gate.retry_at);
    }
    if (chosen == buffer_.end()) {
      breaker_.cancel_probe();  // allow() may have granted a probe that nothing used
      break;
    }
    last_domain_ = chosen->first;
    Job job{std::move(chosen->second.front()), chosen->first};
    chosen->second.pop_front();
    if (chosen->second.empty()) buffer_.erase(chosen);
    --buffered_;
    throttle_.started(job.domain, now, wall);
    int sender = idle_.back();
    idle_.pop_back();
    ++stats_.in_flight;
    senders_.submit(sender, std::move(job));
  }
  stats_.buffered = static_cast<std::int64_t>(buffered_);
  if (next_wake) wake_at(next_wake);
  maybe_claim();
}

void Dispatcher::wake_at(Micros at) {
  if (wake_at_ && wake_at_ <= at && wake_at_ > mono_now()) return;  // an earlier wake-up is armed
  wake_at_ = at;
  wake_timer_.expires_after(std::chrono::microseconds(std::max<Micros>(0, at - mono_now())));
  wake_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    wake_at_ = 0;
    pump();
  });
}

void Dispatcher::set_paused(bool paused, const std::string& reason) {
  if (stats_.paused == paused && stats_.pause_reason == reason) return;
  stats_.paused = paused;
  stats_.pause_reason = reason;
  UnixMillis now = now_millis();
  DispatchState st{paused ? "paused" : "running", reason, now};
  if (paused) {
    log_warning("dispatch paused: " + reason);
  } else {
    log_info("dispatch resumed");
  }
  store_.run([st](Store& s) { s.set_dispatch_state(st); });
}

void Dispatcher::post_result(JobResult r) {
  bool first;
  {
    std::lock_guard lock(results_mu_);
    first = results_.empty();
    results_.push_back(std::move(r));
  }
  if (first) asio::post(io_, [this] { drain_results(); });
}

void Dispatcher::drain_results() {
  std::vector<JobResult> batch;
  {
    std::lock_guard lock(results_mu_);
    batch.swap(results_);
  }
  for (auto& r : batch) on_result(std::move(r));
}

void Dispatcher::on_result(JobResult r) {
  // The sender already recorded the outcome; here only the loop's own state changes.
  idle_.push_back(r.sender);
  --stats_.in_flight;
  Micros now = mono_now();
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
    if (c.relay_trouble) {
      breaker_.record_failure(now, c.reply);
      if (breaker_.state(now) == CircuitBreaker::State::open) {
        set_paused(true, "the relay is not accepting mail (" + c.reply + "); retrying by itself");
      }
    } else {
      breaker_.record_success();
      if (stats_.paused) set_paused(false, "");
    }
    temporary = c.verdict == Verdict::deferred && c.code >= 400 && c.code < 500;
    if (c.verdict == Verdict::bounced) {
      ++stats_.bounced;
      log_info("hard bounce from " + log_address(m.recipient) + ": " + c.reply);
    } else if (c.verdict == Verdict::rejected) {
      log_warning("message " + std::to_string(m.id) + " refused by the relay: " + c.reply);
    }
  } else if (r.kind == JobResult::Kind::compose_failed) {
    log_warning("message " + std::to_string(m.id) + " failed: " + r.detail);
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
  throttle_.finished(r.domain, temporary, now);
  if (stopping_) {
    finish_if_drained();
  } else {
    pump();
  }
}

void Dispatcher::shutdown(std::function<void()> done) {
  stopping_ = true;
  on_drained_ = std::move(done);
  wake_timer_.cancel();
  claim_timer_.cancel();
  sweep_timer_.cancel();
  UnixMillis wall = now_millis();
  for (auto& [domain, q] : buffer_) {
    for (const auto& m : q) release(m, wall, "shutting down");
  }
  buffer_.clear();
  buffered_ = 0;
  grace_timer_.expires_after(std::chrono::seconds(config_->daemon.shutdown_grace_seconds));
  grace_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    log_warning("shutdown grace period over: aborting " + std::to_string(stats_.in_flight) +
                " deliveries");
    senders_.abort_in_flight();
  });
  finish_if_drained();
}

void Dispatcher::finish_if_drained() {
  if (!stopping_ || stats_.in_flight > 0 || claim_pending_ || !on_drained_) return;
  grace_timer_.cancel();
  auto done = std::move(on_drained_);
  on_drained_ = nullptr;
  done();
}

}  // namespace bulkmail
