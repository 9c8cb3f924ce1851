#include "store/postgres/pg_quota.h"

#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/pg_store.h"
#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// A migrated schema of its own, and two daemons' quotas on it. Advisory locks are the whole
// server's, not the schema's: each test names its domains with a random part.
struct TwoDaemons {
  std::unique_ptr<TestDatabase> db = postgres_database();
  std::unique_ptr<Store> store = db->open();  // creates the tables
  PgClusterQuota a{db->location()};
  PgClusterQuota b{db->location()};
  std::string domain = "d" + std::to_string(std::random_device{}()) + ".example";
};

QuotaAsk tokens(const std::string& key, double rate, double burst, int want) {
  QuotaAsk ask;
  ask.tokens.push_back({key, rate, burst, want});
  return ask;
}

QuotaAsk slots(const std::string& domain, int cap, std::vector<int> held, int want) {
  QuotaAsk ask;
  ask.slots.push_back({domain, cap, std::move(held), want});
  return ask;
}

QuotaAsk daily(std::int64_t limit, std::int64_t want, std::int64_t day = 20'000) {
  return QuotaAsk{.day = day, .daily_limit = limit, .daily_want = want};
}

}  // namespace

TEST_CASE("cluster quota: a rate grants its burst at once, then one token per interval") {
  TwoDaemons t;
  // 10 a second with a burst of 4: five at once, whatever is asked for.
  QuotaAnswer first = t.a.exchange(tokens("global", 10, 4, 100));
  REQUIRE(first.tokens.size() == 1);
  CHECK(first.tokens[0].granted == 5);
  // The other daemon shares the key: nothing left for it, and it is told when the next comes.
  QuotaAnswer second = t.b.exchange(tokens("global", 10, 4, 100));
  CHECK(second.tokens[0].granted == 0);
  CHECK(second.tokens[0].wait > 0);
  CHECK(second.tokens[0].wait <= 100'000);
  std::this_thread::sleep_for(std::chrono::microseconds(second.tokens[0].wait + 20'000));
  CHECK(t.b.exchange(tokens("global", 10, 4, 100)).tokens[0].granted >= 1);
  // Another key is an account of its own.
  CHECK(t.a.exchange(tokens("domain:" + t.domain, 10, 0, 3)).tokens[0].granted == 1);
}

TEST_CASE("cluster quota: over a second, two daemons together get the rate, not twice it") {
  TwoDaemons t;
  int granted = 0;
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::milliseconds(1000);
  // A burst of 50 (a quarter second's worth) so that a loaded test machine's pauses between the
  // loop's asks, each a round trip to the server, lose no tokens to a full bucket.
  while (std::chrono::steady_clock::now() < end) {
    granted += t.a.exchange(tokens("global", 200, 50, 5)).tokens[0].granted;
    granted += t.b.exchange(tokens("global", 200, 50, 5)).tokens[0].granted;
  }
  // 200 a second, and the full bucket (51) at the start: never more than the rate allows by the
  // clock, far from the 400 two daemons would take on their own.
  CHECK(granted <= 200 + 51 + 5);
  CHECK(granted >= 150);  // and not starved either (the loop asks far more often than needed)
}

TEST_CASE("cluster quota: several keys in one exchange answer in the order asked") {
  TwoDaemons t;
  QuotaAsk ask;
  ask.tokens.push_back({"global", 100, 9, 4});
  ask.tokens.push_back({"domain:" + t.domain, 1, 0, 4});
  ask.tokens.push_back({"domain:a-" + t.domain, 100, 1, 4});
  QuotaAnswer r = t.a.exchange(ask);
  REQUIRE(r.tokens.size() == 3);
  CHECK(r.tokens[0].granted == 4);
  CHECK(r.tokens[1].granted == 1);
  CHECK(r.tokens[2].granted == 2);
}

TEST_CASE("cluster quota: connection slots are exclusive, and free themselves when a daemon dies") {
  TwoDaemons t;
  QuotaAnswer a = t.a.exchange(slots(t.domain, 2, {}, 2));
  REQUIRE(a.slots.size() == 1);
  CHECK(a.slots[0] == std::vector<int>{0, 1});
  CHECK(t.b.exchange(slots(t.domain, 2, {}, 1)).slots[0].empty());
  // A daemon asking again never takes a slot it holds twice.
  CHECK(t.a.exchange(slots(t.domain, 3, {0, 1}, 3)).slots[0] == std::vector<int>{2});
  // Handed back: the other daemon takes it.
  QuotaAsk release;
  release.release_slots.emplace_back(t.domain, 1);
  t.a.exchange(release);
  CHECK(t.b.exchange(slots(t.domain, 3, {}, 3)).slots[0] == std::vector<int>{1});

  // Daemon A's session ends (it died, or lost the database): its slots are free at once.
  std::uint64_t session_before = t.a.exchange(QuotaAsk{}).session;
  pg::Connection admin(t.db->location());
  admin.exec("SELECT pg_terminate_backend($1::int)",
             pg::Params().add(t.a.connection().backend_pid()));
  std::vector<int> held = {1};
  for (int i = 0; i < 100 && held.size() < 3; ++i) {
    QuotaAnswer r = t.b.exchange(slots(t.domain, 3, held, 2));
    for (int s : r.slots[0]) held.push_back(s);
    if (held.size() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(held == std::vector<int>{1, 0, 2});
  // A's first statement finds its session gone (and throws: the daemon asks again), the next
  // reconnects: A is told its session changed (what it held is gone) and finds no slot free.
  QuotaAnswer back;
  for (int i = 0; i < 3; ++i) {
    try {
      back = t.a.exchange(slots(t.domain, 3, {}, 3));
      break;
    } catch (const pg::Error& e) {
      CHECK(e.connection_lost());
    }
  }
  REQUIRE(back.slots.size() == 1);
  CHECK(back.session != session_before);
  CHECK(back.slots[0].empty());
}

TEST_CASE("cluster quota: the daily limit is never overshot across daemons") {
  TwoDaemons t;
  QuotaAnswer a = t.a.exchange(daily(10, 6));
  CHECK(a.daily_granted == 6);
  CHECK(a.daily_used == 6);
  QuotaAnswer b = t.b.exchange(daily(10, 6));
  CHECK(b.daily_granted == 4);
  CHECK(b.daily_used == 10);
  CHECK(t.a.exchange(daily(10, 6)).daily_granted == 0);
  // Places handed back unused serve another daemon.
  QuotaAsk back = daily(10, 0);
  back.daily_return = 3;
  t.b.exchange(back);
  CHECK(t.a.exchange(daily(10, 6)).daily_granted == 3);
  // Another day is counted from what was sent that day already.
  QuotaAsk next = daily(10, 6, 20'001);
  next.sent_today = 7;
  QuotaAnswer n = t.a.exchange(next);
  CHECK(n.daily_granted == 3);
  CHECK(n.daily_used == 10);
}
