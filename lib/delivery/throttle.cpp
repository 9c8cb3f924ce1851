#include "delivery/throttle.h"

#include <algorithm>

namespace bulkmail {
namespace {
constexpr Micros kSecond = 1'000'000;
constexpr Micros kFirstPause = kSecond;
constexpr Micros kMaxPause = 300 * kSecond;
// Shared: how much of a rate one exchange takes (its tokens last about this long), how long a
// domain's slots stay held with nothing to send, and how the asks slow down while the database is
// away.
constexpr double kGrantSpan = 0.02;
constexpr Micros kSlotIdle = kSecond;
constexpr Micros kSlotRetry = 50'000;
constexpr Micros kFirstAskBackoff = 200'000;
constexpr Micros kMaxAskBackoff = 5 * kSecond;
constexpr const char* kGlobalKey = "global";
std::string domain_key(const std::string& domain) { return "domain:" + domain; }
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

Throttle::Throttle(const ThrottleConfig& config, int max_connections, Micros now, Scope scope)
    : config_(config), max_connections_(max_connections), scope_(scope) {
  double burst = config.burst > 0 ? config.burst : config.messages_per_second / 10;
  global_ = TokenBucket(config.messages_per_second, burst, now);
}

void Throttle::reconfigure(const ThrottleConfig& config, int max_connections, Micros now) {
  config_ = config;
  max_connections_ = max_connections;
  daily_exhausted_ = false;  // a raised limit: the cluster is asked again
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
    // Places are the day's: those left from yesterday are void, and today has its own.
    daily_have_ = 0;
    daily_exhausted_ = false;
    daily_used_ = -1;
  }
}

void Throttle::set_sent_today(std::int64_t n, UnixMillis wall_now) {
  roll_day(wall_now);
  sent_today_ = n;
}

std::int64_t Throttle::sent_today(UnixMillis wall_now) {
  roll_day(wall_now);
  // Shared: the places every daemon took today (in flight included), once the cluster said.
  if (shared() && daily_used_ >= 0) return daily_used_ - daily_have_;
  return sent_today_;
}

bool Throttle::daily_limit_reached(UnixMillis wall_now) {
  roll_day(wall_now);
  if (config_.daily_limit <= 0) return false;
  if (shared()) return daily_exhausted_ && daily_have_ == 0;
  return sent_today_ >= config_.daily_limit;
}

Throttle::Gate Throttle::check(const std::string& name, Micros now, UnixMillis wall_now) {
  roll_day(wall_now);
  if (shared()) return shared_check(domain(name, now), name, now, wall_now);
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
  if (shared()) {
    --tokens_[kGlobalKey].have;
    if (d.has_rate) --tokens_[domain_key(name)].have;
    if (config_.daily_limit > 0) --daily_have_;
  } else {
    global_.try_take(now);
    if (d.has_rate) d.bucket.try_take(now);
  }
  ++d.in_flight;
  ++in_flight_;
}

void Throttle::finished(const std::string& name, bool temporary_failure, bool accepted, Micros now,
                        UnixMillis wall_now) {
  roll_day(wall_now);
  if (accepted) ++sent_today_;
  // Shared: a place a delivery did not use serves the next one.
  if (shared() && !accepted && config_.daily_limit > 0) ++daily_have_;
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

// --- shared ---

int Throttle::batch_for(double per_second, double burst) const {
  // About kGrantSpan of the rate per exchange, never more than the rate allows at once.
  int want = static_cast<int>(per_second * kGrantSpan + 0.999);
  return std::clamp(want, 1, std::max(1, static_cast<int>(1 + burst)));
}

bool Throttle::shared_token(const std::string& key, Micros now, Micros& retry_at) {
  Allowance& a = tokens_[key];
  if (a.have > 0) return true;
  a.wanted = true;
  Micros t = asking_ ? 0 : std::max({a.not_before, ask_again_at_, now});
  if (t > now && (retry_at == 0 || t < retry_at)) retry_at = t;
  return false;
}

Throttle::Gate Throttle::shared_check(Domain& d, const std::string& name, Micros now,
                                      UnixMillis wall_now) {
  d.last_check = now;
  // Everything missing is noted, so that one exchange asks for all of it.
  Gate held;
  bool daily = false;
  if (config_.daily_limit > 0 && daily_have_ <= 0) {
    daily = true;
    if (daily_exhausted_) {
      if (in_flight_ > 0) return {false, 0, true};  // a delivery may fail yet and free its place
      UnixMillis midnight = (wall_now / 86'400'000 + 1) * 86'400'000;
      return {false, now + (midnight - wall_now) * 1000, true};
    }
    daily_wanted_ = true;
  }
  if (now < d.paused_until) return {false, d.paused_until};
  if (d.in_flight >= d.allowed) return {false, 0};
  bool ok = !daily;
  if (d.max_connections > 0 && d.in_flight >= static_cast<int>(d.slots.size())) {
    ok = false;
    if (static_cast<int>(d.slots.size()) < d.allowed) {
      d.slot_wanted = true;
      if (!asking_) held.retry_at = std::max({d.slot_not_before, ask_again_at_, now});
    }
  }
  if (d.has_rate && !shared_token(domain_key(name), now, held.retry_at)) ok = false;
  if (!shared_token(kGlobalKey, now, held.retry_at)) ok = false;
  if (ok) return {true, now};
  held.daily_limit = daily;
  if (!asking_ && ask_again_at_ > now) held.retry_at = std::max(held.retry_at, ask_again_at_);
  if (held.retry_at <= now) held.retry_at = 0;  // the exchange's answer wakes the senders
  return held;
}

std::optional<QuotaAsk> Throttle::ask(Micros now, UnixMillis wall_now, bool closing) {
  if (!shared() || asking_ || (now < ask_again_at_ && !closing)) return std::nullopt;
  roll_day(wall_now);
  QuotaAsk a;
  a.day = day_;
  for (auto& [key, allowance] : tokens_) {
    if (closing || !allowance.wanted || allowance.have > 0 || now < allowance.not_before) continue;
    allowance.wanted = false;
    bool global = key == kGlobalKey;
    double rate = config_.messages_per_second;
    double burst = config_.burst > 0 ? config_.burst : rate / 10;
    if (!global) {
      auto c = config_.domains.find(key.substr(std::string_view("domain:").size()));
      if (c == config_.domains.end() || c->second.messages_per_second <= 0) continue;
      rate = c->second.messages_per_second;
      burst = 0;
    }
    a.tokens.push_back({key, rate, burst, batch_for(rate, burst)});
  }
  for (auto& [name, d] : domains_) {
    if (d.max_connections <= 0) continue;
    // Slots held beyond what is in flight go back once the domain has had nothing to send for a
    // second (or at once when closing): another daemon may need them.
    if (static_cast<int>(d.slots.size()) > d.in_flight &&
        (closing || now - d.last_check >= kSlotIdle)) {
      while (static_cast<int>(d.slots.size()) > d.in_flight) {
        to_release_.emplace_back(name, d.slots.back());
        d.slots.pop_back();
      }
    }
    if (closing || !d.slot_wanted || now < d.slot_not_before) continue;
    d.slot_wanted = false;
    a.slots.push_back({name, d.max_connections, d.slots, 1});
  }
  if (config_.daily_limit > 0 && daily_wanted_ && !daily_exhausted_ && !closing) {
    daily_wanted_ = false;
    a.daily_limit = config_.daily_limit;
    a.daily_want = batch_for(config_.messages_per_second, 1e9);
    a.sent_today = sent_today_;
  }
  if (closing && daily_have_ > 0) {
    a.daily_return = daily_have_;
    daily_have_ = 0;
  }
  a.release_slots = std::move(to_release_);
  to_release_.clear();
  if (a.tokens.empty() && a.slots.empty() && a.daily_want == 0 && a.release_slots.empty() &&
      a.daily_return == 0) {
    return std::nullopt;
  }
  asking_ = true;
  return a;
}

void Throttle::answered(const QuotaAsk& ask, const QuotaAnswer& answer, Micros now) {
  asking_ = false;
  ask_backoff_ = 0;
  ask_again_at_ = 0;
  if (answer.session != session_) {
    // The database session changed: the slots held before went with it.
    session_ = answer.session;
    for (auto& [name, d] : domains_) d.slots.clear();
  }
  for (std::size_t i = 0; i < ask.tokens.size() && i < answer.tokens.size(); ++i) {
    Allowance& a = tokens_[ask.tokens[i].key];
    a.have += answer.tokens[i].granted;
    a.not_before = answer.tokens[i].granted > 0 ? 0 : now + answer.tokens[i].wait;
  }
  for (std::size_t i = 0; i < ask.slots.size() && i < answer.slots.size(); ++i) {
    auto it = domains_.find(ask.slots[i].domain);
    if (it == domains_.end()) continue;
    Domain& d = it->second;
    for (int slot : answer.slots[i]) d.slots.push_back(slot);
    d.slot_not_before = answer.slots[i].empty() ? now + kSlotRetry : 0;
  }
  if (ask.daily_want > 0 && ask.day == day_) {
    daily_have_ += answer.daily_granted;
    daily_used_ = answer.daily_used;
    daily_exhausted_ =
        answer.daily_granted < ask.daily_want && answer.daily_used >= ask.daily_limit;
  }
}

void Throttle::ask_failed(const QuotaAsk& ask, Micros now) {
  asking_ = false;
  ask_backoff_ = ask_backoff_ ? std::min(kMaxAskBackoff, ask_backoff_ * 2) : kFirstAskBackoff;
  ask_again_at_ = now + ask_backoff_;
  // Asked again once the pause is over; slots handed back stay to hand back.
  for (const TokenAsk& t : ask.tokens) tokens_[t.key].wanted = true;
  for (const SlotAsk& s : ask.slots) {
    auto it = domains_.find(s.domain);
    if (it != domains_.end()) it->second.slot_wanted = true;
  }
  if (ask.daily_want > 0) daily_wanted_ = true;
  daily_have_ += ask.daily_return;
  for (const auto& r : ask.release_slots) to_release_.push_back(r);
}

int Throttle::tokens_held(const std::string& key) const {
  auto it = tokens_.find(key);
  return it == tokens_.end() ? 0 : it->second.have;
}

int Throttle::slots_held(const std::string& name) const {
  auto it = domains_.find(name);
  return it == domains_.end() ? 0 : static_cast<int>(it->second.slots.size());
}

}  // namespace bulkmail
