#include "store/postgres/pg_listener.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <string>
#include <vector>

#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

using Clock = std::chrono::steady_clock;
using Payloads = std::vector<std::string>;

// How long a test waits for the server at most: a notification on loopback takes milliseconds.
constexpr auto kPatience = std::chrono::seconds(5);

// A channel no other test (nor a store test running beside this one) NOTIFYs: channels belong to
// the whole database, not to a test's schema.
std::string channel(const std::string& tag) {
  return "bm_Listener_" + std::to_string(::getpid()) + "_" + tag;
}

bool readable(int fd, std::chrono::milliseconds within) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(within.count())) > 0;
}

std::chrono::milliseconds left(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
}

// Waits on the listener's socket, as a daemon's loop does, and takes what arrives until `count`
// payloads came or kPatience is over.
Payloads collect(pg::Listener& l, std::size_t count) {
  Payloads got;
  auto deadline = Clock::now() + kPatience;
  while (got.size() < count && left(deadline).count() > 0) {
    if (!readable(l.socket(), left(deadline))) break;
    for (auto& p : l.take_notifications()) got.push_back(std::move(p));
  }
  return got;
}

void notify(pg::Connection& c, const std::string& channel, const std::string& payload) {
  c.exec("SELECT pg_notify($1, $2)", pg::Params().add(channel).add(payload));
}

}  // namespace

TEST_CASE("pg listener: a NOTIFY from another connection arrives with its payload") {
  // A space, capitals and a double quote: the name reaches the server exactly, quoted.
  std::string name = channel("a") + " \"q\"";
  pg::Listener l(test_postgres_uri(), name);
  CHECK(l.channel() == name);
  REQUIRE(l.socket() >= 0);
  CHECK_FALSE(readable(l.socket(), std::chrono::milliseconds(0)));
  CHECK(l.take_notifications().empty());

  pg::Connection sender(test_postgres_uri());
  std::string payload = "event 42, 'quoted' \"too\", \xc3\xa9";
  notify(sender, name, payload);
  REQUIRE(readable(l.socket(), kPatience));
  CHECK(collect(l, 1) == Payloads{payload});
  // Taken once: the socket is quiet again and nothing is left behind.
  CHECK_FALSE(readable(l.socket(), std::chrono::milliseconds(0)));
  CHECK(l.take_notifications().empty());
}

TEST_CASE("pg listener: notifications on other channels are not delivered") {
  std::string name = channel("b");
  pg::Listener l(test_postgres_uri(), name);
  pg::Connection sender(test_postgres_uri());
  notify(sender, name + "_other", "other channel");
  // What an unquoted LISTEN would have listened on (identifiers fold to lower case).
  std::string folded = name;
  for (char& ch : folded) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  REQUIRE(folded != name);
  notify(sender, folded, "folded name");
  notify(sender, name, "marker");
  // Delivered in commit order: anything wrongly delivered would come before the marker.
  CHECK(collect(l, 1) == Payloads{"marker"});
}

TEST_CASE("pg listener: a lost connection throws, and after reconnect notifications arrive again") {
  std::string name = channel("c");
  pg::Listener l(test_postgres_uri(), name);
  pg::Connection admin(test_postgres_uri());
  pg::Connection sender(test_postgres_uri());
  int before = l.backend_pid();
  admin.exec("SELECT pg_terminate_backend($1::int)", pg::Params().add(before));

  // The socket turns readable (the server's last words, then its close), and reading throws.
  bool lost = false;
  auto deadline = Clock::now() + kPatience;
  while (!lost && left(deadline).count() > 0) {
    if (!readable(l.socket(), left(deadline))) break;
    try {
      // Outside CHECK, which would catch the exception itself.
      std::vector<std::string> got = l.take_notifications();
      CHECK(got.empty());
    } catch (const pg::Error& e) {
      CHECK(e.connection_lost());
      lost = true;
    }
  }
  REQUIRE(lost);
  CHECK(l.socket() == -1);
  try {
    l.take_notifications();
    FAIL("a lost connection was read from");
  } catch (const pg::Error& e) {
    CHECK(e.connection_lost());
  }

  // Sent while the listener is down: never delivered, which is why the caller reads the log.
  notify(sender, name, "while down");
  l.reconnect();
  CHECK(l.socket() >= 0);
  CHECK(l.backend_pid() != before);
  notify(sender, name, "after");
  CHECK(collect(l, 1) == Payloads{"after"});
}

TEST_CASE("pg listener: a server that cannot be reached throws connection_lost") {
  // Nothing listens on port 1 of loopback.
  try {
    pg::Listener l("postgresql://bulkmail@127.0.0.1:1/db?connect_timeout=5", channel("u"));
    FAIL("listened on nothing");
  } catch (const pg::Error& e) {
    CHECK(e.connection_lost());
  }
}

TEST_CASE("pg listener: identical NOTIFYs in one transaction are folded into one") {
  // PostgreSQL's NOTIFY: a later duplicate (same channel and payload) in one transaction is
  // dropped, distinct payloads all arrive in the order sent, and separate transactions are never
  // folded together.
  std::string name = channel("d");
  pg::Listener l(test_postgres_uri(), name);
  pg::Connection sender(test_postgres_uri());
  {
    pg::Transaction tx(sender);
    notify(sender, name, "same");
    notify(sender, name, "same");
    notify(sender, name, "other");
    notify(sender, name, "same");
    tx.commit();
  }
  notify(sender, name, "same");  // a transaction of its own
  notify(sender, name, "marker");
  // Without the folding the first four would arrive and the marker would be missed.
  CHECK(collect(l, 4) == Payloads{"same", "other", "same", "marker"});
}
