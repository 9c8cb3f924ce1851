#include "delivery/circuit_breaker.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("opens after repeated relay failures, probes, backs off, closes on success") {
  CircuitBreaker b(3, 1000, 8000);
  using S = CircuitBreaker::State;
  b.record_failure(0, "refused");
  b.record_failure(0, "refused");
  CHECK(b.state(0) == S::closed);
  CHECK(b.allow(0));
  b.record_failure(100, "refused");
  CHECK(b.state(100) == S::open);
  CHECK_FALSE(b.allow(500));
  CHECK(b.reason() == "refused");
  CHECK(b.state(1100) == S::half_open);
  CHECK(b.allow(1100));        // one probe
  CHECK_FALSE(b.allow(1100));  // and only one
  b.record_failure(1200, "refused again");
  CHECK(b.open_until() == 3200);  // the delay doubled
  struct Row {
    Micros failure_at, open_until;
  };
  for (Row r : {Row{3300, 7300}, Row{7400, 15400}, Row{15500, 23500}}) {  // capped at 8000
    CHECK(b.allow(r.failure_at));
    b.record_failure(r.failure_at, "down");
    CHECK(b.open_until() == r.open_until);
  }
  CHECK(b.allow(23500));
  b.record_success();
  CHECK(b.state(23500) == S::closed);
  CHECK(b.allow(23500));
  CHECK(b.allow(23500));
}
