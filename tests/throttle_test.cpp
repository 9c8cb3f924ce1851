#include "delivery/throttle.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>

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

// --- shared: several daemons, one cluster's rates (cluster_quota.h) ---

namespace {

// The database's side of the exchanges for these tests, on the test's clock: GCRA per key, as
// bulkmail_take_tokens does it, and slots as a set. What PostgreSQL itself does is
// pg_quota_test's; here the point is what a daemon's throttle spends and asks for.
struct Cluster {
  std::map<std::string, double> tat;
  std::map<std::string, std::set<int>> taken;
  std::int64_t used = 0;
  QuotaAnswer answer(const QuotaAsk& ask, Micros now) {
    QuotaAnswer r;
    for (const auto& [domain, slot] : ask.release_slots) taken[domain].erase(slot);
    for (const TokenAsk& t : ask.tokens) {
      double interval = 1e6 / t.per_second, tolerance = t.burst * interval;
      double base = std::max(tat[t.key], static_cast<double>(now));
      int avail = static_cast<int>(std::floor((now + tolerance - base) / interval)) + 1;
      int granted = std::clamp(avail, 0, t.want);
      if (granted > 0) tat[t.key] = base + granted * interval;
      r.tokens.push_back({granted, granted ? 0 : static_cast<Micros>(base - tolerance - now) + 1});
    }
    for (const SlotAsk& s : ask.slots) {
      std::vector<int> got;
      for (int i = 0; i < s.cap && static_cast<int>(got.size()) < s.want; ++i) {
        if (taken[s.domain].insert(i).second) got.push_back(i);
      }
      r.slots.push_back(got);
    }
    r.daily_granted = std::clamp<std::int64_t>(ask.daily_limit - used, 0, ask.daily_want);
    used += r.daily_granted;
    r.daily_used = used;
    return r;
  }
  // Answers whatever `t` asks now, at once.
  void serve(Throttle& t, Micros now) {
    while (auto ask = t.ask(now, kWall)) t.answered(*ask, answer(*ask, now), now);
  }
};

}  // namespace

TEST_CASE("shared throttle: three daemons on one cluster send its rate together, not three times") {
  ThrottleConfig c;
  c.messages_per_second = 300;
  Cluster cluster;
  std::vector<Throttle> daemons;
  for (int i = 0; i < 3; ++i) daemons.emplace_back(c, 20, 0, Throttle::Scope::shared);
  int sent = 0;
  for (Micros now = 0; now < 30 * kSec; now += 1000) {  // each daemon looks every millisecond
    for (Throttle& t : daemons) {
      while (t.check("example.com", now, kWall).ok) {
        t.started("example.com", now, kWall);
        t.finished("example.com", false, true, now, kWall);
        ++sent;
      }
      cluster.serve(t, now);
    }
  }
  CHECK(sent >= 300 * 30 * 0.95);
  CHECK(sent <= 300 * 30 * 1.05);
}

TEST_CASE(
    "shared throttle: a missing token is asked for once, in a batch, and the grant is spent") {
  ThrottleConfig c;
  c.messages_per_second = 300;  // a batch is 20 ms of it: 6 tokens
  Throttle t(c, 20, 0, Throttle::Scope::shared);
  auto g = t.check("example.com", 0, kWall);
  CHECK_FALSE(g.ok);
  CHECK(g.retry_at == 0);  // the answer wakes the senders
  auto ask = t.ask(0, kWall);
  REQUIRE(ask);
  REQUIRE(ask->tokens.size() == 1);
  CHECK(ask->tokens[0].key == "global");
  CHECK(ask->tokens[0].want == 6);
  CHECK_FALSE(t.ask(0, kWall));  // one exchange at a time
  QuotaAnswer answer;
  answer.tokens.push_back({4, 0});
  t.answered(*ask, answer, 0);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(t.check("example.com", 0, kWall).ok);
    t.started("example.com", 0, kWall);
  }
  CHECK_FALSE(t.check("example.com", 0, kWall).ok);
  // None granted: the cluster says when the next comes, and the throttle waits until then.
  auto again = t.ask(0, kWall);
  REQUIRE(again);
  QuotaAnswer none;
  none.tokens.push_back({0, 3000});
  t.answered(*again, none, 0);
  CHECK(t.check("example.com", 10, kWall).retry_at == 3000);
  CHECK_FALSE(t.ask(10, kWall));
  t.check("example.com", 3000, kWall);
  CHECK(t.ask(3000, kWall));
}

TEST_CASE("shared throttle: a failed exchange is asked again later, each pause doubling") {
  ThrottleConfig c;
  Throttle t(c, 20, 0, Throttle::Scope::shared);
  t.check("example.com", 0, kWall);
  auto ask = t.ask(0, kWall);
  REQUIRE(ask);
  t.ask_failed(*ask, 0);
  CHECK(t.check("example.com", 1, kWall).retry_at == 200'000);
  CHECK_FALSE(t.ask(1, kWall));
  auto second = t.ask(200'000, kWall);
  REQUIRE(second);
  t.ask_failed(*second, 200'000);
  CHECK(t.check("example.com", 200'001, kWall).retry_at == 600'000);
  Cluster cluster;
  cluster.serve(t, 600'000);
  CHECK(t.check("example.com", 600'000, kWall).ok);
}

TEST_CASE(
    "shared throttle: a domain's connection cap is the cluster's slots, handed back when idle") {
  ThrottleConfig c;
  c.messages_per_second = 1000;
  c.domains["capped.example"] = {0, 2};
  Cluster cluster;
  cluster.taken["capped.example"] = {0};  // another daemon holds one of the two
  Throttle t(c, 20, 0, Throttle::Scope::shared);
  CHECK_FALSE(t.check("capped.example", 0, kWall).ok);
  cluster.serve(t, 0);
  CHECK(t.slots_held("capped.example") == 1);
  REQUIRE(t.check("capped.example", 0, kWall).ok);
  t.started("capped.example", 0, kWall);
  // The second slot is the other daemon's: no more than one here.
  auto g = t.check("capped.example", 0, kWall);
  CHECK_FALSE(g.ok);
  cluster.serve(t, 0);
  CHECK(t.slots_held("capped.example") == 1);
  CHECK(t.check("capped.example", 1, kWall).retry_at == 50'000);  // asked again shortly
  t.finished("capped.example", false, true, 10, kWall);
  // Nothing asked of the domain for a second: its slot goes back.
  cluster.serve(t, 500'000);
  CHECK(t.slots_held("capped.example") == 1);
  cluster.serve(t, 1'100'000);
  CHECK(t.slots_held("capped.example") == 0);
  CHECK(cluster.taken["capped.example"] == std::set<int>{0});
  // A new database session (a reconnect) took the locks with it: the throttle forgets them.
  t.check("capped.example", 2 * kSec, kWall);
  cluster.serve(t, 2 * kSec);
  REQUIRE(t.slots_held("capped.example") == 1);
  QuotaAsk empty;
  QuotaAnswer moved;
  moved.session = 7;
  t.answered(empty, moved, 3 * kSec);
  CHECK(t.slots_held("capped.example") == 0);
}

TEST_CASE("shared throttle: the daily limit is the cluster's, and an unused place serves again") {
  ThrottleConfig c;
  c.messages_per_second = 100;
  c.daily_limit = 3;
  Cluster cluster;
  cluster.used = 1;  // another daemon sent one today
  Throttle t(c, 20, 0, Throttle::Scope::shared);
  CHECK_FALSE(t.check("example.com", 0, kWall).ok);
  cluster.serve(t, 0);
  for (int i = 0; i < 2; ++i) {
    REQUIRE(t.check("example.com", 0, kWall).ok);
    t.started("example.com", 0, kWall);
  }
  auto g = t.check("example.com", 0, kWall);
  CHECK_FALSE(g.ok);
  cluster.serve(t, 0);  // asks; the cluster has no place left
  CHECK(t.check("example.com", 0, kWall).daily_limit);
  // One delivery is refused: its place is this daemon's to use again.
  t.finished("example.com", true, false, 0, kWall);
  CHECK_FALSE(t.daily_limit_reached(kWall));
  t.finished("example.com", false, true, 0, kWall);
  REQUIRE(t.check("other.example", 0, kWall).ok);
  t.started("other.example", 0, kWall);
  t.finished("other.example", false, true, 0, kWall);
  CHECK(t.daily_limit_reached(kWall));
  CHECK(t.sent_today(kWall) == 3);
  // Shutting down hands back what is unused (nothing here) and every slot.
  CHECK_FALSE(t.ask(0, kWall, /*closing=*/true));
}
