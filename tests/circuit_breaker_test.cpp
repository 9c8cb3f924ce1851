#include "delivery/circuit_breaker.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("opens after repeated relay failures, probes, backs off, closes on success") {
  CircuitBreaker b(3, 1000, 8000);
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
  CircuitBreaker b(3, 1000, 60000);
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
  CircuitBreaker b(3, 1000, 8000);
  for (int i = 0; i < 3; ++i) b.record_failure(0, "refused", false);
  REQUIRE(b.open_until() == 1000);
  REQUIRE(b.allow(1000));
  b.record_success(1000, true);
  for (int i = 0; i < 3; ++i) b.record_failure(1500, "refused", false);
  CHECK(b.open_until() == 1500 + 2000);
  REQUIRE(b.allow(3500));
  b.record_success(3500, true);
  // A minute closed: the next opening is a new one.
  Micros later = 3500 + 60'000'000;
  for (int i = 0; i < 3; ++i) b.record_failure(later, "refused", false);
  CHECK(b.open_until() == later + 1000);
}
