#include "throttle.h"

#include <doctest/doctest.h>

using namespace bulkmail;

namespace {
constexpr Micros kSec = 1'000'000;
constexpr UnixMillis kWall = 1'795'000'000'000;
}  // namespace

TEST_CASE("token bucket: rate over time and burst") {
  TokenBucket b(10, 0, 0);  // 10/s, no burst
  CHECK(b.try_take(0));
  CHECK_FALSE(b.try_take(0));
  CHECK(b.next_token_at(0) == kSec / 10 + 1);
  int taken = 1;
  for (Micros t = 0; t <= 10 * kSec; t += 1000) taken += b.try_take(t) ? 1 : 0;
  CHECK(taken == 101);  // 1 at start plus 10/s for 10 s
  TokenBucket burst(10, 5, 0);
  int at_once = 0;
  while (burst.try_take(0)) ++at_once;
  CHECK(at_once == 6);
}

TEST_CASE("global rate: the share of a 30 s window stays within 5% of the configured rate") {
  ThrottleConfig c;
  c.messages_per_second = 500;
  Throttle t(c, 20, 0);
  int sent = 0;
  Micros now = 0;
  while (now < 30 * kSec) {
    auto g = t.check("example.com", now, kWall);
    if (g.ok) {
      t.started("example.com", now, kWall);
      t.finished("example.com", false, now);
      ++sent;
    } else {
      now = std::max(now + 1, g.retry_at);
    }
  }
  CHECK(sent >= 500 * 30 * 0.95);
  CHECK(sent <= 500 * 30 * 1.05);
}

TEST_CASE("per-domain rate and connection cap") {
  ThrottleConfig c;
  c.messages_per_second = 1000;
  c.domains["slow.example"] = {2, 1};
  Throttle t(c, 20, 0);
  CHECK(t.check("slow.example", 0, kWall).ok);
  t.started("slow.example", 0, kWall);
  CHECK_FALSE(t.check("slow.example", 0, kWall).ok);  // one connection at most
  CHECK(t.check("fast.example", 0, kWall).ok);        // other domains are not held back
  t.finished("slow.example", false, 10);
  auto g = t.check("slow.example", 10, kWall);
  CHECK_FALSE(g.ok);  // 2/s: the next token is half a second later
  CHECK(g.retry_at == kSec / 2 + 1);
}

TEST_CASE("a domain answering 4xx slows down by itself and recovers") {
  ThrottleConfig c;
  c.messages_per_second = 1000;
  Throttle t(c, 16, 0);
  t.started("busy.example", 0, kWall);
  t.finished("busy.example", true, 0);
  CHECK(t.domain_concurrency("busy.example") == 8);
  auto g = t.check("busy.example", 1, kWall);
  CHECK_FALSE(g.ok);
  CHECK(g.retry_at == kSec);  // paused for 1 s
  CHECK(t.check("other.example", 1, kWall).ok);
  t.started("busy.example", kSec, kWall);
  t.finished("busy.example", true, kSec);
  CHECK(t.domain_concurrency("busy.example") == 4);
  CHECK(t.check("busy.example", kSec + 1, kWall).retry_at == 3 * kSec);  // the pause doubled
  t.started("busy.example", 3 * kSec, kWall);
  t.finished("busy.example", false, 3 * kSec);
  CHECK(t.domain_concurrency("busy.example") == 5);
  CHECK(t.check("busy.example", 3 * kSec, kWall).ok);
}

TEST_CASE("daily limit holds until the next UTC day") {
  ThrottleConfig c;
  c.messages_per_second = 1000;
  c.daily_limit = 3;
  Throttle t(c, 20, 0);
  UnixMillis day_start = (kWall / 86'400'000) * 86'400'000;
  t.set_sent_today(2, day_start + 1000);
  CHECK(t.check("a.example", 0, day_start + 1000).ok);
  t.started("a.example", 0, day_start + 1000);
  auto g = t.check("a.example", 10, day_start + 1000);
  CHECK_FALSE(g.ok);
  CHECK(g.retry_at == 10 + (Micros{86'400'000} - 1000) * 1000);
  CHECK(t.check("a.example", 20, day_start + 86'400'000).ok);  // a new day
}
