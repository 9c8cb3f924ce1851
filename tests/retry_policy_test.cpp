#include "delivery/retry_policy.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("backoff doubles from the initial delay up to the maximum, with jitter of +-25%") {
  RetryConfig p;
  p.initial_delay_seconds = 60;
  p.max_delay_seconds = 3600;
  struct Row {
    int attempts;
    UnixMillis expected_ms;  // with jitter 0.5 (the midpoint)
  };
  const Row table[] = {{1, 60'000},    {2, 120'000},   {3, 240'000},   {4, 480'000},   {5, 960'000},
                       {6, 1'920'000}, {7, 3'600'000}, {8, 3'600'000}, {50, 3'600'000}};
  for (const Row& r : table) {
    CAPTURE(r.attempts);
    CHECK(backoff_delay(r.attempts, p, 0.5) == r.expected_ms);
  }
  CHECK(backoff_delay(1, p, 0.0) == 45'000);
  CHECK(backoff_delay(1, p, 0.999) == 74'970);
}

TEST_CASE("give up after max_attempts or past the maximum age") {
  RetryConfig p;
  p.initial_delay_seconds = 60;
  p.max_delay_seconds = 3600;
  p.max_attempts = 5;
  p.expire_after_hours = 2;
  UnixMillis created = 1'000'000'000;
  auto d = decide_retry(1, created, created + 1000, p, 0.5);
  CHECK_FALSE(d.give_up);
  CHECK(d.next_attempt_at == created + 1000 + 60'000);
  CHECK(decide_retry(5, created, created + 1000, p, 0.5).give_up);
  // Age: the next try would land after created + 2 h.
  CHECK_FALSE(decide_retry(2, created, created + 7'000'000, p, 0.5).give_up);
  CHECK(decide_retry(2, created, created + 7'100'000, p, 0.5).give_up);
}
