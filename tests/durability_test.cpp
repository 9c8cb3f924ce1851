#include "store/durability.h"

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <vector>

using namespace bulkmail;

namespace {

// A ticket as one argument: doctest's macros split their arguments at a brace's comma.
SenderTicket ticket(int sender, std::uint64_t seq) { return {sender, seq}; }

using std::chrono::milliseconds;

}  // namespace

TEST_CASE("a journaled outcome is durable at once, with every earlier one of its sender") {
  Durability d(2);
  CHECK(d.durable(0, 0));  // before the first outcome: nothing to wait for
  CHECK_FALSE(d.durable(0, 1));
  d.recorded(ticket(0, 1), /*journaled=*/true);
  CHECK(d.durable(0, 1));
  d.recorded(ticket(0, 3), true);
  CHECK(d.durable(0, 2));
  CHECK(d.durable(0, 3));
  CHECK_FALSE(d.durable(1, 1));  // another sender's outcomes are its own
  d.wait(0, 3);                  // returns at once
}

TEST_CASE(
    "an outcome the journal could not take holds its sender's later ones back until it "
    "is committed") {
  Durability d(2);
  d.recorded(ticket(0, 1), /*journaled=*/false);
  CHECK_FALSE(d.durable(0, 1));
  d.recorded(ticket(0, 2), true);
  CHECK_FALSE(d.durable(0, 2));  // a crash now would lose outcome 1: 2 must not count
  d.recorded(ticket(1, 1), true);
  CHECK(d.durable(1, 1));  // the other sender is not held back
  SUBCASE("committed together") {
    d.committed(std::vector<SenderTicket>{ticket(0, 2), ticket(0, 1)});  // in any order
    CHECK(d.durable(0, 2));
  }
  SUBCASE("the held-back outcome first") {
    d.committed(std::vector<SenderTicket>{ticket(0, 1)});
    CHECK(d.durable(0, 1));
    // The hold is over: a journaled outcome is durable at once again.
    d.recorded(ticket(0, 3), true);
    CHECK(d.durable(0, 3));
  }
  SUBCASE("a commit of earlier outcomes does not end the hold") {
    Durability e(1);
    e.recorded(ticket(0, 1), true);
    e.recorded(ticket(0, 2), false);
    e.committed(std::vector<SenderTicket>{ticket(0, 1)});
    e.recorded(ticket(0, 3), true);
    CHECK_FALSE(e.durable(0, 2));
    CHECK_FALSE(e.durable(0, 3));
    e.committed(std::vector<SenderTicket>{ticket(0, 2), ticket(0, 3)});
    CHECK(e.durable(0, 3));
  }
}

TEST_CASE("a sender waiting for its outcome is woken once it is durable, or when it stops") {
  Durability d(2);
  auto first = std::async(std::launch::async, [&] { d.wait(0, 1); });
  CHECK(first.wait_for(milliseconds(30)) == std::future_status::timeout);
  d.recorded(ticket(0, 1), /*journaled=*/false);
  CHECK(first.wait_for(milliseconds(30)) == std::future_status::timeout);
  d.committed(std::vector<SenderTicket>{ticket(0, 1)});
  CHECK(first.wait_for(milliseconds(5000)) == std::future_status::ready);

  auto second = std::async(std::launch::async, [&] { d.wait(1, 1); });
  CHECK(second.wait_for(milliseconds(30)) == std::future_status::timeout);
  d.stop();  // nothing will be committed any more
  CHECK(second.wait_for(milliseconds(5000)) == std::future_status::ready);
  d.wait(1, 7);  // after stop(): at once
}

TEST_CASE("a sender or outcome out of range is a bug, refused at the call") {
  Durability d(2);
  CHECK_NOTHROW(d.check(ticket(1, 1)));
  CHECK_THROWS_AS(d.check(ticket(2, 1)), std::out_of_range);
  CHECK_THROWS_AS(d.check(ticket(-1, 1)), std::out_of_range);
  CHECK_THROWS_AS(d.check(ticket(0, 0)), std::out_of_range);  // outcomes count from 1
  CHECK_THROWS_AS(d.recorded(ticket(2, 1), true), std::out_of_range);
  CHECK_THROWS_AS(d.committed(std::vector<SenderTicket>{ticket(2, 1)}), std::out_of_range);
  CHECK_THROWS_AS(d.durable(2, 1), std::out_of_range);
  CHECK_THROWS_AS(d.wait(2, 1), std::out_of_range);
  Durability none(0);  // a worker no sender reports to
  CHECK_THROWS_AS(none.check(ticket(0, 1)), std::out_of_range);
  CHECK_THROWS_AS(Durability(-1), std::invalid_argument);
}
