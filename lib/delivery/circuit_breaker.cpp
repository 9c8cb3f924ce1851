#include "delivery/circuit_breaker.h"

#include <algorithm>

namespace bulkmail {

CircuitBreaker::State CircuitBreaker::state(Micros now) const {
  if (failures_ < threshold_) return State::closed;
  return now < open_until_ ? State::open : State::half_open;
}

bool CircuitBreaker::allow(Micros now) {
  switch (state(now)) {
    case State::closed:
      return true;
    case State::open:
      return false;
    case State::half_open:
      if (probing_) return false;
      probing_ = true;
      return true;
  }
  return true;
}

void CircuitBreaker::record_success(Micros now, bool probe) {
  if (!probe && state(now) != State::closed) return;
  if (state(now) != State::closed) closed_at_ = now;
  // The delay is kept: a relay that fails again soon after a probe got through (a probe on a
  // connection it still serves, while it refuses new ones) is the same trouble going on.
  failures_ = 0;
  probing_ = false;
  reason_.clear();
}

bool CircuitBreaker::record_failure(Micros now, const std::string& reason, bool probe) {
  if (probe) probing_ = false;
  if (!probe && state(now) != State::closed) return false;
  reason_ = reason;
  if (++failures_ < threshold_) return false;
  // From half-open (the probe failed), or from closed soon after the probe closed it: the delay
  // doubles. After a while closed it starts afresh.
  bool same_trouble = probe || (delay_ && now - closed_at_ < kSameTrouble);
  delay_ = same_trouble && delay_ ? std::min(max_delay_, delay_ * 2) : first_delay_;
  double left_out = jitter_ > 0 ? std::uniform_real_distribution<double>(0.0, jitter_)(rng_) : 0;
  open_until_ = now + delay_ - static_cast<Micros>(static_cast<double>(delay_) * left_out);
  return true;
}

}  // namespace bulkmail
