#include "store/suppression_watch.h"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace bulkmail;
using namespace std::chrono_literals;

namespace {

Suppression made(const std::string& address, const std::string& category,
                 SuppressionReason reason = SuppressionReason::unsubscribe) {
  return {address, category, reason, "one-click", 1000};
}

}  // namespace

TEST_CASE("a recent suppression stops its category, an all-mail one every category") {
  SuppressionWatch w;
  auto t = SuppressionWatch::Clock::now();
  w.set_horizon(t - 1s);
  CHECK_FALSE(w.find("pat@example.com", "customer-update").suppression);
  w.add(made("pat@example.com", "research-invitation"), t);
  CHECK(w.find("pat@example.com", "research-invitation").suppression);
  CHECK_FALSE(w.find("pat@example.com", "customer-update").suppression);
  CHECK_FALSE(w.find("sam@example.com", "research-invitation").suppression);
  w.add(made("pat@example.com", "", SuppressionReason::hard_bounce), t);
  auto look = w.find("pat@example.com", "research-invitation");
  REQUIRE(look.suppression);
  CHECK(look.suppression->category.empty());  // all mail wins, as in the store
  CHECK(look.suppression->reason == SuppressionReason::hard_bounce);
  CHECK(w.find("pat@example.com", "customer-update").suppression);
  CHECK(w.size() == 2);
}

TEST_CASE("a lifted suppression stops nothing any more") {
  SuppressionWatch w;
  w.set_horizon(SuppressionWatch::Clock::now() - 1s);
  w.add(made("pat@example.com", "customer-update"));
  w.add(made("pat@example.com", ""));
  w.lift("pat@example.com", "");
  CHECK(w.find("pat@example.com", "customer-update").suppression);
  w.lift("pat@example.com", "customer-update");
  CHECK_FALSE(w.find("pat@example.com", "customer-update").suppression);
  CHECK(w.size() == 0);
  w.lift("nobody@example.com", "");  // nothing to lift: no harm
}

TEST_CASE("an entry is kept while a message claimed before it may still be delivered") {
  SuppressionWatch w;
  auto t = SuppressionWatch::Clock::now();
  w.set_horizon(t);  // the oldest message still to go was claimed at t
  CHECK(w.watching());
  w.add(made("old@example.com", ""), t - 1s);  // before that claim: the claim saw it
  w.add(made("new@example.com", ""), t + 1s);
  // However long the claimed message waits, the newer entry stays.
  w.add(made("later@example.com", ""), t + 1h);
  CHECK_FALSE(w.find("old@example.com", "x").suppression);
  CHECK(w.find("new@example.com", "x").suppression);
  CHECK(w.find("later@example.com", "x").suppression);
  // Every message claimed at t is gone; what is left was claimed after both entries were added.
  w.set_horizon(t + 2h);
  w.add(made("newest@example.com", ""), t + 2h);
  CHECK_FALSE(w.find("new@example.com", "x").suppression);
  CHECK(w.find("newest@example.com", "x").suppression);
  // Nothing claimed at all: nothing to keep, and nothing to follow in the event log.
  w.set_horizon(std::nullopt);
  CHECK_FALSE(w.watching());
  w.add(made("x@example.com", ""), t + 3h);
  CHECK(w.size() == 1);  // only the one just added
  CHECK_FALSE(w.find("newest@example.com", "x").suppression);
}

TEST_CASE("an opt-out not yet committed is kept whatever the horizon, until added again") {
  SuppressionWatch w;
  auto t = SuppressionWatch::Clock::now();
  w.add(made("pat@example.com", ""), t, /*pending=*/true);
  w.set_horizon(t + 1h);
  w.add(made("sam@example.com", ""), t + 2h);  // forgets what is older than the horizon
  CHECK(w.find("pat@example.com", "x").suppression);
  w.add(made("pat@example.com", ""), t + 2h);  // committed: ages like the rest
  w.set_horizon(t + 3h);
  w.add(made("tom@example.com", ""), t + 3h);
  CHECK_FALSE(w.find("pat@example.com", "x").suppression);
  CHECK(w.find("tom@example.com", "x").suppression);
}

TEST_CASE(
    "past its capacity the watch says it does not know, until the surplus is behind the horizon") {
  SuppressionWatch w(2);
  auto t = SuppressionWatch::Clock::now();
  w.set_horizon(t);
  w.add(made("a@example.com", ""), t);
  w.add(made("b@example.com", ""), t);
  CHECK(w.find("c@example.com", "x").known);
  w.add(made("c@example.com", ""), t + 1s);  // no room
  CHECK_FALSE(w.find("c@example.com", "x").known);
  CHECK(w.find("a@example.com", "x").suppression);  // what it holds, it still knows
  // An opt-out being recorded always finds room.
  w.add(made("d@example.com", ""), t + 1s, /*pending=*/true);
  CHECK(w.find("d@example.com", "x").suppression);
  w.set_horizon(t + 2s);  // every message claimed before the overflow is gone
  w.add(made("e@example.com", ""), t + 3s);
  CHECK(w.find("e@example.com", "x").known);
  CHECK(w.find("e@example.com", "x").suppression);
  CHECK(w.find("zed@example.com", "x").known);
}

TEST_CASE("a sender's hold: the look, the hold, and an opt-out told when it ends") {
  SuppressionWatch w;
  std::atomic<int> ended{0};
  w.on_hold_ended([&] { ++ended; });
  auto look = w.look_and_hold(3, "pat@example.com", "customer-update");
  CHECK(look.known);
  CHECK_FALSE(look.suppression);
  CHECK(w.held("pat@example.com", "customer-update"));
  CHECK(w.held("pat@example.com", ""));  // an all-mail opt-out would stop it too
  CHECK_FALSE(w.held("pat@example.com", "research-invitation"));
  CHECK_FALSE(w.held("sam@example.com", ""));
  w.end_hold(3);
  CHECK(ended == 1);  // held() was asked about this address
  CHECK_FALSE(w.held("pat@example.com", ""));
  w.end_hold(3);  // nothing held: no call
  CHECK(ended == 1);
  // A suppressed recipient is not held.
  w.add(made("sam@example.com", ""), SuppressionWatch::Clock::now(), /*pending=*/true);
  CHECK(w.look_and_hold(0, "sam@example.com", "customer-update").suppression);
  CHECK_FALSE(w.held("sam@example.com", ""));
  // Nobody asked about a hold: ending it tells nobody.
  w.look_and_hold(1, "tom@example.com", "customer-update");
  w.end_hold(1);
  CHECK(ended == 1);
}

TEST_CASE("senders look and hold while opt-outs are added and the horizon moves") {
  // The watch from every side at once, as in the daemon (also run under ThreadSanitizer): four
  // senders' looks and holds, the store worker adding opt-outs and asking for holds, the
  // dispatcher moving the horizon.
  SuppressionWatch w;
  w.set_horizon(SuppressionWatch::Clock::now() - 60s);  // messages are out: entries are kept
  std::atomic<int> hold_endings{0};
  w.on_hold_ended([&] { ++hold_endings; });
  const int kPeople = 100;
  std::vector<std::atomic<bool>> added(kPeople);
  std::atomic<bool> done{false};
  std::atomic<int> missed{0}, stopped{0};
  std::vector<std::thread> senders;
  for (int sender = 0; sender < 4; ++sender) {
    senders.emplace_back([&, sender] {
      for (int i = 0; !done; ++i) {
        int who = (i * 7 + sender) % kPeople;
        bool was_added = added[who];  // before the look: the look must see it
        auto look =
            w.look_and_hold(sender, "p" + std::to_string(who) + "@example.com", "customer-update");
        if (look.suppression) {
          ++stopped;
          continue;
        }
        if (was_added) ++missed;
        w.end_hold(sender);
      }
    });
  }
  std::thread horizon([&] {
    while (!done) {
      w.set_horizon(SuppressionWatch::Clock::now() - 60s);
      std::this_thread::yield();
    }
  });
  for (int who = 0; who < kPeople; ++who) {
    std::string address = "p" + std::to_string(who) + "@example.com";
    w.held(address, "customer-update");
    w.add(made(address, "customer-update"));
    added[who] = true;
  }
  while (stopped < 1000) std::this_thread::yield();
  done = true;
  for (auto& t : senders) t.join();
  horizon.join();
  CHECK(missed == 0);
  CHECK(w.size() == static_cast<std::size_t>(kPeople));
  MESSAGE(hold_endings.load() << " holds ended while an opt-out waited for them");
}
