#include "suppression_watch.h"

#include <doctest/doctest.h>

using namespace bulkmail;
using namespace std::chrono_literals;

namespace {

Suppression made(const std::string& address, const std::string& category,
                 SuppressionReason reason = SuppressionReason::unsubscribe) {
  return {address, category, reason, "one-click", 1000};
}

}  // namespace

TEST_CASE("a recent suppression stops its category, an all-mail one every category") {
  SuppressionWatch w(120s);
  auto t = SuppressionWatch::Clock::now();
  CHECK_FALSE(w.find("pat@example.com", "customer-update", t).suppression);
  w.add(made("pat@example.com", "research-invitation"), t);
  CHECK(w.find("pat@example.com", "research-invitation", t).suppression);
  CHECK_FALSE(w.find("pat@example.com", "customer-update", t).suppression);
  CHECK_FALSE(w.find("sam@example.com", "research-invitation", t).suppression);
  w.add(made("pat@example.com", "", SuppressionReason::hard_bounce), t);
  auto look = w.find("pat@example.com", "research-invitation", t);
  REQUIRE(look.suppression);
  CHECK(look.suppression->category.empty());  // all mail wins, as in the store
  CHECK(look.suppression->reason == SuppressionReason::hard_bounce);
  CHECK(w.find("pat@example.com", "customer-update", t).suppression);
  CHECK(w.size() == 2);
}

TEST_CASE("a lifted suppression stops nothing any more") {
  SuppressionWatch w(120s);
  w.add(made("pat@example.com", "customer-update"));
  w.add(made("pat@example.com", ""));
  w.lift("pat@example.com", "");
  CHECK(w.find("pat@example.com", "customer-update").suppression);
  w.lift("pat@example.com", "customer-update");
  CHECK_FALSE(w.find("pat@example.com", "customer-update").suppression);
  CHECK(w.size() == 0);
  w.lift("nobody@example.com", "");  // nothing to lift: no harm
}

TEST_CASE("entries older than the keep period are forgotten") {
  SuppressionWatch w(10s);
  auto t = SuppressionWatch::Clock::now();
  w.add(made("old@example.com", ""), t);
  w.add(made("new@example.com", ""), t + 8s);
  w.add(made("newer@example.com", ""), t + 11s);  // forgets what is older than 10 s
  CHECK_FALSE(w.find("old@example.com", "x", t + 11s).suppression);
  CHECK(w.find("new@example.com", "x", t + 11s).suppression);
  CHECK(w.size() == 2);
}

TEST_CASE("past its capacity the watch says it does not know, until the surplus ages out") {
  SuppressionWatch w(10s, 2);
  auto t = SuppressionWatch::Clock::now();
  w.add(made("a@example.com", ""), t);
  w.add(made("b@example.com", ""), t);
  CHECK(w.find("c@example.com", "x", t).known);
  w.add(made("c@example.com", ""), t);  // no room
  auto look = w.find("c@example.com", "x", t + 1s);
  CHECK_FALSE(look.known);
  CHECK_FALSE(w.find("a@example.com", "x", t + 1s).known);
  w.add(made("d@example.com", ""), t + 11s);  // a and b aged out: room again
  CHECK(w.find("d@example.com", "x", t + 12s).known);
  CHECK(w.find("d@example.com", "x", t + 12s).suppression);
  CHECK(w.size() == 1);
}
