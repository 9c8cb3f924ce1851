#include "delivery/throttle.h"

#include <algorithm>

namespace bulkmail {
namespace {
constexpr Micros kSecond = 1'000'000;
constexpr Micros kFirstPause = kSecond;
constexpr Micros kMaxPause = 300 * kSecond;
}  // namespace

TokenBucket::TokenBucket(double per_second, double burst, Micros now)
    : rate_(per_second), capacity_(1 + burst), tokens_(1 + burst), last_(now) {}

void TokenBucket::refill(Micros now) {
  if (now > last_) {
    tokens_ = std::min(capacity_, tokens_ + rate_ * static_cast<double>(now - last_) / kSecond);
    last_ = now;
  }
}

bool TokenBucket::try_take(Micros now) {
  refill(now);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

Micros TokenBucket::next_token_at(Micros now) {
  refill(now);
  if (tokens_ >= 1 || rate_ <= 0) return now;
  return now + static_cast<Micros>((1 - tokens_) * kSecond / rate_) + 1;
}

Throttle::Throttle(const ThrottleConfig& config, int max_connections, Micros now)
    : config_(config), max_connections_(max_connections) {
  double burst = config.burst > 0 ? config.burst : config.messages_per_second / 10;
  global_ = TokenBucket(config.messages_per_second, burst, now);
}

void Throttle::reconfigure(const ThrottleConfig& config, int max_connections, Micros now) {
  config_ = config;
  max_connections_ = max_connections;
  double burst = config.burst > 0 ? config.burst : config.messages_per_second / 10;
  global_ = TokenBucket(config.messages_per_second, burst, now);
  for (auto& [name, d] : domains_) {
    auto it = config_.domains.find(name);
    d.has_rate = it != config_.domains.end() && it->second.messages_per_second > 0;
    if (d.has_rate) d.bucket = TokenBucket(it->second.messages_per_second, 0, now);
    d.max_connections = it != config_.domains.end() ? it->second.max_connections : 0;
    int cap = d.max_connections ? d.max_connections : max_connections_;
    d.allowed = std::min(std::max(d.allowed, 1), cap);
  }
}

Throttle::Domain& Throttle::domain(const std::string& name, Micros now) {
  auto [it, fresh] = domains_.try_emplace(name);
  Domain& d = it->second;
  if (fresh) {
    auto c = config_.domains.find(name);
    if (c != config_.domains.end()) {
      d.has_rate = c->second.messages_per_second > 0;
      if (d.has_rate) d.bucket = TokenBucket(c->second.messages_per_second, 0, now);
      d.max_connections = c->second.max_connections;
    }
    d.allowed = d.max_connections ? d.max_connections : max_connections_;
  }
  return d;
}

void Throttle::roll_day(UnixMillis wall_now) {
  std::int64_t day = wall_now / 86'400'000;
  if (day != day_) {
    day_ = day;
    sent_today_ = 0;
  }
}

void Throttle::set_sent_today(std::int64_t n, UnixMillis wall_now) {
  roll_day(wall_now);
  sent_today_ = n;
}

std::int64_t Throttle::sent_today(UnixMillis wall_now) {
  roll_day(wall_now);
  return sent_today_;
}

bool Throttle::daily_limit_reached(UnixMillis wall_now) {
  roll_day(wall_now);
  return config_.daily_limit > 0 && sent_today_ >= config_.daily_limit;
}

Throttle::Gate Throttle::check(const std::string& name, Micros now, UnixMillis wall_now) {
  roll_day(wall_now);
  if (config_.daily_limit > 0 && sent_today_ + in_flight_ >= config_.daily_limit) {
    if (sent_today_ < config_.daily_limit) return {false, 0, true};  // a delivery may fail yet
    UnixMillis midnight = (wall_now / 86'400'000 + 1) * 86'400'000;
    return {false, now + (midnight - wall_now) * 1000, true};
  }
  Domain& d = domain(name, now);
  if (now < d.paused_until) return {false, d.paused_until};
  if (d.in_flight >= d.allowed) return {false, 0};  // wait for a delivery to that domain to end
  if (d.has_rate) {
    Micros t = d.bucket.next_token_at(now);
    if (t > now) return {false, t};
  }
  Micros g = global_.next_token_at(now);
  if (g > now) return {false, g};
  return {true, now};
}

void Throttle::started(const std::string& name, Micros now, UnixMillis wall_now) {
  roll_day(wall_now);
  Domain& d = domain(name, now);
  global_.try_take(now);
  if (d.has_rate) d.bucket.try_take(now);
  ++d.in_flight;
  ++in_flight_;
}

void Throttle::finished(const std::string& name, bool temporary_failure, bool accepted, Micros now,
                        UnixMillis wall_now) {
  roll_day(wall_now);
  if (accepted) ++sent_today_;
  in_flight_ = std::max<std::int64_t>(0, in_flight_ - 1);
  Domain& d = domain(name, now);
  d.in_flight = std::max(0, d.in_flight - 1);
  int cap = d.max_connections ? d.max_connections : max_connections_;
  if (temporary_failure) {
    // Multiplicative decrease: half the connections, and a pause that doubles while 4xx go on.
    d.allowed = std::max(1, d.allowed / 2);
    d.pause = d.pause ? std::min(kMaxPause, d.pause * 2) : kFirstPause;
    d.paused_until = now + d.pause;
  } else {
    // Additive increase: one more connection per success, up to the cap.
    d.allowed = std::min(cap, d.allowed + 1);
    d.pause = 0;
  }
}

int Throttle::domain_concurrency(const std::string& name) const {
  auto it = domains_.find(name);
  return it == domains_.end() ? max_connections_ : it->second.allowed;
}

}  // namespace bulkmail
