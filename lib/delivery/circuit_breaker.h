// Stops dispatch while the relay is down (connections refused, 421 to everything) instead of
// spending every queued message's attempts, and resumes by itself: after `threshold` failures in
// a row it opens for a delay, then lets one probe through (half-open); the probe's success closes
// it, its failure opens it again for twice the delay, up to a maximum. Opening again within 10 s
// of the probe closing it doubles the delay too (the trouble went on: the probe got through on a
// connection the relay still serves, and the refusals followed at once); later trouble is new,
// and starts afresh at the first delay, so that a relay that refuses for a few seconds now and
// then costs a few seconds each time, not the largest delay.
// While it is not closed only the probe speaks: deliveries that began before it opened end on
// connections opened before the trouble (a relay that refuses new connections still takes mail on
// the ones it has), so their successes would close it at once and their failures pile up its delay.
// Each wait is the delay less a random part of it (`jitter`, half by default: between half the
// delay and all of it), so that probes do not fall into step with trouble that comes and goes on
// a clock: a relay down 5 s of every minute, probed every 60 s from a probe that fell in its
// window, would be found down forever (the million-message soak did just that).
// Pure: time comes in as an argument, and the random part from a generator seeded by the caller.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "base/clock.h"

namespace bulkmail {

class CircuitBreaker {
 public:
  // `jitter` in [0, 1]: the largest part of a delay left out of a wait (0: every wait is the
  // delay).
  explicit CircuitBreaker(int threshold = 3, Micros first_delay = 1'000'000,
                          Micros max_delay = 60'000'000, double jitter = 0.5,
                          std::uint64_t seed = std::random_device{}())
      : threshold_(threshold),
        first_delay_(first_delay),
        max_delay_(max_delay),
        jitter_(std::clamp(jitter, 0.0, 1.0)),
        rng_(seed) {}

  enum class State { closed, open, half_open };

  // May a delivery start? In half-open, only one probe at a time: a granted probe is out until
  // it is settled by record_success, record_failure or cancel_probe.
  bool allow(Micros now);
  // A delivery ended with the relay taking part; `probe` when it was the probe allow() granted.
  void record_success(Micros now, bool probe);
  // A delivery met relay trouble (`reason`). True when this failure opened the breaker (from
  // closed: the threshold reached; from half-open: the probe failed).
  bool record_failure(Micros now, const std::string& reason, bool probe);
  // The probe allow() granted ended without telling whether the relay works (it was never used,
  // or its message was suppressed, could not be composed or was aborted): another one may go.
  void cancel_probe() { probing_ = false; }
  // Whether a probe is out.
  bool probing() const { return probing_; }

  State state(Micros now) const;
  Micros open_until() const { return open_until_; }
  const std::string& reason() const { return reason_; }

 private:
  int threshold_;
  Micros first_delay_, max_delay_;
  double jitter_;
  std::mt19937_64 rng_;
  static constexpr Micros kSameTrouble = 10'000'000;  // reopened within this: the same trouble
  int failures_ = 0;
  Micros delay_ = 0;      // doubles; each wait is this less its random part
  Micros closed_at_ = 0;  // when the probe last closed it
  Micros open_until_ = 0;
  bool probing_ = false;
  std::string reason_;
};

}  // namespace bulkmail
