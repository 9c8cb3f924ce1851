#include "delivery/circuit_breaker.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

using namespace bulkmail;

TEST_CASE("opens after repeated relay failures, probes, backs off, closes on success") {
  CircuitBreaker b(3, 1000, 8000, /*jitter=*/0);
  using S = CircuitBreaker::State;
  CHECK_FALSE(b.record_failure(0, "refused", false));
  CHECK_FALSE(b.record_failure(0, "refused", false));
  CHECK(b.state(0) == S::closed);
  CHECK(b.allow(0));
  CHECK(b.record_failure(100, "refused", false));  // this one opened it
  CHECK(b.state(100) == S::open);
  CHECK_FALSE(b.allow(500));
  CHECK(b.reason() == "refused");
  CHECK(b.state(1100) == S::half_open);
  CHECK(b.allow(1100));        // one probe
  CHECK_FALSE(b.allow(1100));  // and only one
  CHECK(b.record_failure(1200, "refused again", true));
  CHECK(b.open_until() == 3200);  // the delay doubled
  struct Row {
    Micros failure_at, open_until;
  };
  for (Row r : {Row{3300, 7300}, Row{7400, 15400}, Row{15500, 23500}}) {  // capped at 8000
    CHECK(b.allow(r.failure_at));
    b.record_failure(r.failure_at, "down", true);
    CHECK(b.open_until() == r.open_until);
  }
  CHECK(b.allow(23500));
  b.record_success(23500, true);
  CHECK(b.state(23500) == S::closed);
  CHECK(b.allow(23500));
  CHECK(b.allow(23500));
}

TEST_CASE("while open only the probe speaks: deliveries begun before say nothing") {
  // A relay that refuses new connections still takes mail on the ones it has: the deliveries in
  // flight on those end well, the senders that must reconnect fail at once.
  CircuitBreaker b(3, 1000, 60000, /*jitter=*/0);
  using S = CircuitBreaker::State;
  for (int i = 0; i < 3; ++i) b.record_failure(0, "connection refused", false);
  REQUIRE(b.state(0) == S::open);
  // A success on an old connection does not close it, and more refusals neither reopen it nor
  // pile up its delay.
  b.record_success(10, false);
  CHECK(b.state(10) == S::open);
  for (int i = 0; i < 20; ++i) CHECK_FALSE(b.record_failure(20, "connection refused", false));
  CHECK(b.open_until() == 1000);
  CHECK(b.reason() == "connection refused");
  // Half-open: late results are not the probe's either.
  CHECK(b.allow(1000));
  b.record_success(1001, false);
  CHECK_FALSE(b.record_failure(1002, "connection refused", false));
  CHECK(b.probing());
  CHECK(b.state(1002) == S::half_open);
  // The probe decides.
  b.record_success(1003, true);
  CHECK(b.state(1003) == S::closed);
}

TEST_CASE("opening again soon after a probe got through doubles the delay, later starts afresh") {
  // A probe can get through on a connection the relay still serves while it refuses new ones:
  // the next refusals are the same trouble, and must not start again at the first delay.
  CircuitBreaker b(3, 1000, 8000, /*jitter=*/0);
  for (int i = 0; i < 3; ++i) b.record_failure(0, "refused", false);
  REQUIRE(b.open_until() == 1000);
  REQUIRE(b.allow(1000));
  b.record_success(1000, true);
  for (int i = 0; i < 3; ++i) b.record_failure(1500, "refused", false);
  CHECK(b.open_until() == 1500 + 2000);
  REQUIRE(b.allow(3500));
  b.record_success(3500, true);
  // Nine seconds closed: still the same trouble.
  Micros t = 3500 + 9'000'000;
  for (int i = 0; i < 3; ++i) b.record_failure(t, "refused", false);
  CHECK(b.open_until() == t + 4000);
  REQUIRE(b.allow(t + 4000));
  b.record_success(t + 4000, true);
  // Eleven seconds closed: the next opening is a new one.
  t += 4000 + 11'000'000;
  for (int i = 0; i < 3; ++i) b.record_failure(t, "refused", false);
  CHECK(b.open_until() == t + 1000);
}

TEST_CASE("a relay down 5 s of every minute costs a few seconds a minute, not the largest delay") {
  // Deliveries every 50 ms for half an hour; in the relay's window every one is refused, outside
  // it every one goes through. The time paused outside the windows is what the breaker wasted.
  auto refusing = [](Micros t) { return t % 60'000'000 >= 55'000'000; };
  CircuitBreaker b(3, 1'000'000, 60'000'000, 0.5, /*seed=*/3);
  Micros wasted = 0, relay_up = 0;
  const Micros step = 50'000;
  for (Micros now = 0; now < 30 * 60'000'000LL; now += step) {
    bool probe = b.state(now) == CircuitBreaker::State::half_open;
    if (!refusing(now)) relay_up += step;
    if (!b.allow(now)) {
      if (!refusing(now)) wasted += step;
      continue;
    }
    if (refusing(now))
      b.record_failure(now, "refused", probe);
    else
      b.record_success(now, probe);
  }
  double share = static_cast<double>(wasted) / static_cast<double>(relay_up);
  CAPTURE(share);
  // Each window: 1, 2 and 4 s at most, so the probe after it comes at most a few seconds late.
  // (When every opening within a minute doubled the delay, it stayed at 30 to 60 s: over 0.5.)
  CHECK(share < 0.08);
  CHECK(wasted > 0);  // the probe after a window does come a little late
}

TEST_CASE("each wait is between half the delay and all of it, and not the same every time") {
  CircuitBreaker b(1, 1000, 8000, 0.5, /*seed=*/7);
  Micros now = 0;
  b.record_failure(now, "refused", false);
  std::vector<Micros> waits{b.open_until() - now};
  const Micros delays[] = {2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000};
  for (Micros delay : delays) {
    now = b.open_until();
    REQUIRE(b.allow(now));
    b.record_failure(now, "refused", true);
    Micros wait = b.open_until() - now;
    CAPTURE(delay);
    CHECK(wait >= delay / 2);
    CHECK(wait <= delay);
    waits.push_back(wait);
  }
  CHECK(waits[0] >= 500);
  CHECK(waits[0] <= 1000);
  // At the largest delay, the waits spread over the whole half: not all one value, and near
  // both ends of it.
  for (int i = 0; i < 60; ++i) {
    now = b.open_until();
    REQUIRE(b.allow(now));
    b.record_failure(now, "refused", true);
    waits.push_back(b.open_until() - now);
  }
  std::set<Micros> at_max(waits.end() - 66, waits.end());
  CHECK(at_max.size() > 30);
  CHECK(*at_max.begin() < 4500);
  CHECK(*at_max.rbegin() > 7500);
}

namespace {

// A relay that refuses new connections 5 s of every 60, from second 55 (the soak's relay): how
// many probes in a row find it refusing, from one that fell in its window with the breaker at its
// largest delay of 60 s? At most `limit`.
int probes_refused(CircuitBreaker& b, int limit) {
  auto refusing = [](Micros t) { return t % 60'000'000 >= 55'000'000; };
  Micros now = 59'700'000;  // a probe in the window, as at 11:14:59.7 in the soak
  for (int i = 0; i < 10; ++i) b.record_failure(now, "refused", i >= 3);  // at the largest delay
  for (int refused = 0; refused < limit; ++refused) {
    now = b.open_until() + 2'000;  // the dispatcher's wake-up comes a little after
    REQUIRE(b.allow(now));
    if (!refusing(now)) {
      b.record_success(now, true);
      return refused;
    }
    b.record_failure(now, "refused", true);
  }
  return limit;
}

}  // namespace

TEST_CASE("probes do not fall into step with a relay that is down a few seconds every minute") {
  // Without the random part every probe comes 60 s after the last, in the same second of the
  // relay's minute: found down forever (the rule before; the million-message soak stalled on it).
  CircuitBreaker steady(3, 1'000'000, 60'000'000, /*jitter=*/0);
  CHECK(probes_refused(steady, 100) == 100);
  // With it, a probe falls in the 5 s window with a chance of about 1 in 6: through within a few.
  int worst = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    CircuitBreaker b(3, 1'000'000, 60'000'000, 0.5, seed);
    worst = std::max(worst, probes_refused(b, 100));
  }
  CAPTURE(worst);
  CHECK(worst <= 4);
}
