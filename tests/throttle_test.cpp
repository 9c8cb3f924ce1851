#include "delivery/throttle.h"

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
      t.finished("example.com", false, true, now, kWall);
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
  t.finished("slow.example", false, true, 10, kWall);
  auto g = t.check("slow.example", 10, kWall);
  CHECK_FALSE(g.ok);  // 2/s: the next token is half a second later
  CHECK(g.retry_at == kSec / 2 + 1);
}

TEST_CASE("a domain answering 4xx slows down by itself and recovers") {
  ThrottleConfig c;
  c.messages_per_second = 1000;
  Throttle t(c, 16, 0);
  t.started("busy.example", 0, kWall);
  t.finished("busy.example", true, false, 0, kWall);
  CHECK(t.domain_concurrency("busy.example") == 8);
  auto g = t.check("busy.example", 1, kWall);
  CHECK_FALSE(g.ok);
  CHECK(g.retry_at == kSec);  // paused for 1 s
  CHECK(t.check("other.example", 1, kWall).ok);
  t.started("busy.example", kSec, kWall);
  t.finished("busy.example", true, false, kSec, kWall);
  CHECK(t.domain_concurrency("busy.example") == 4);
  CHECK(t.check("busy.example", kSec + 1, kWall).retry_at == 3 * kSec);  // the pause doubled
  t.started("busy.example", 3 * kSec, kWall);
  t.finished("busy.example", false, true, 3 * kSec, kWall);
  CHECK(t.domain_concurrency("busy.example") == 5);
  CHECK(t.check("busy.example", 3 * kSec, kWall).ok);
}

TEST_CASE("daily limit: messages the relay accepted, never overshot, until the next UTC day") {
  ThrottleConfig c;
  c.messages_per_second = 1000;
  c.daily_limit = 3;
  Throttle t(c, 20, 0);
  UnixMillis day_start = (kWall / 86'400'000) * 86'400'000;
  UnixMillis wall = day_start + 1000;
  t.set_sent_today(1, wall);  // from the store at start-up
  // Two deliveries in flight take the two places left: a third must not start meanwhile.
  t.started("a.example", 0, wall);
  t.started("b.example", 0, wall);
  auto held = t.check("c.example", 10, wall);
  CHECK_FALSE(held.ok);
  CHECK(held.daily_limit);
  CHECK_FALSE(t.daily_limit_reached(wall));
  // One is refused by the relay: it does not count, and its place is free again.
  t.finished("a.example", false, false, 20, wall);
  CHECK(t.sent_today(wall) == 1);
  CHECK(t.check("c.example", 30, wall).ok);
  t.started("c.example", 30, wall);
  t.finished("b.example", false, true, 40, wall);
  t.finished("c.example", false, true, 50, wall);
  CHECK(t.sent_today(wall) == 3);
  CHECK(t.daily_limit_reached(wall));
  auto g = t.check("a.example", 60, wall);
  CHECK_FALSE(g.ok);
  CHECK(g.daily_limit);
  CHECK(g.retry_at == 60 + (Micros{86'400'000} - 1000) * 1000);  // midnight UTC
  // A raised limit lets sending go on at once.
  c.daily_limit = 5;
  t.reconfigure(c, 20, 70);
  CHECK_FALSE(t.daily_limit_reached(wall));
  CHECK(t.check("a.example", 80, wall).ok);
  // And a new day starts from zero.
  c.daily_limit = 3;
  t.reconfigure(c, 20, 90);
  CHECK(t.daily_limit_reached(wall));
  CHECK(t.check("a.example", 100, day_start + 86'400'000).ok);
  CHECK(t.sent_today(day_start + 86'400'000) == 0);
}
