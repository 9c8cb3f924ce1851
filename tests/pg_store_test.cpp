// What PostgresStore must do beyond the behaviour suite (store_test.cpp), because several daemons
// share its database at once.
#include "store/postgres/pg_store.h"

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <span>
#include <string>
#include <vector>

#include "store/postgres/pg_sql.h"
#include "store_helpers.h"
#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("pg: a suppression change still to commit is never skipped by a watch reading past it") {
  auto db = postgres_database();
  auto store = db->open();
  enqueue_one(*store, msg("a@example.com"));  // events exist: the watch starts after them
  std::int64_t start = store->last_event_id();
  // Another daemon's opt-out, under way: its event id is drawn, its transaction not committed.
  pg::Connection other(db->location());
  pg::Transaction tx(other);
  other.exec(pgsql::kSuppressionEventsLock);
  other.exec(
      "INSERT INTO suppressions (address, category, reason, source, created_at) "
      "VALUES ('b@example.com', '', 'unsubscribe', 'one-click', 5)");
  other.exec(
      "INSERT INTO events (at, type, address, category, source, detail) "
      "VALUES (5, 'suppression-added', 'b@example.com', '', 'one-click', 'unsubscribe')");
  // Meanwhile a later event commits, with a higher id.
  enqueue_one(*db->open(), msg("c@example.com"));
  // The watch waits for the change under way rather than read past its id.
  auto reader = db->open();
  auto changes = std::async(std::launch::async, [&] { return reader->suppression_changes(start); });
  CHECK(changes.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  tx.commit();
  SuppressionChanges seen = changes.get();
  REQUIRE(seen.changes.size() == 1);
  CHECK(seen.changes[0].added);
  CHECK(seen.changes[0].suppression.address == "b@example.com");
  CHECK(store->suppression_changes(seen.last).changes.empty());
}

TEST_CASE("pg: an enqueue of an address waits for a forget of it under way") {
  auto db = postgres_database();
  auto store = db->open();
  store->open_campaign("nov", "", 1);
  // A forget of x@example.org in another daemon holds the address's lock until it commits.
  pg::Connection other(db->location());
  pg::Transaction tx(other);
  other.exec("SELECT pg_advisory_xact_lock(1718579815, hashtext($1) & 1023)",
             pg::Params().add("x@example.org"));
  auto enqueue = std::async(std::launch::async,
                            [&] { return enqueue_one(*store, msg("x@example.org", "nov")); });
  CHECK(enqueue.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  // An address in another of the locks' buckets is not held up.
  CHECK(enqueue_one(*db->open(), msg("y@example.org", "nov")).status == EnqueueStatus::queued);
  tx.commit();
  CHECK(enqueue.get().status == EnqueueStatus::queued);
}

TEST_CASE("pg: two imports of the same people at once, in opposite orders, never deadlock") {
  auto db = postgres_database();
  db->open()->open_campaign("nov", "", 1);
  std::vector<NewMessage> forward, backward;
  for (int i = 0; i < 500; ++i) {
    forward.push_back(msg("p" + std::to_string(i) + "@example.org", "nov"));
  }
  backward.assign(forward.rbegin(), forward.rend());
  for (int round = 0; round < 3; ++round) {
    db->execute("DELETE FROM events");
    db->execute("DELETE FROM messages");
    auto a = db->open(), b = db->open();
    // Each in batches of 100, as an import sends them: the two interleave.
    auto import = [](Store& s, const std::vector<NewMessage>& all) {
      std::size_t queued = 0;
      for (std::size_t at = 0; at < all.size(); at += 100) {
        std::span<const NewMessage> batch(all.data() + at, 100);
        for (const EnqueueResult& r : s.enqueue(batch, "import", 2000)) {
          queued += r.status == EnqueueStatus::queued;
        }
      }
      return queued;
    };
    auto one = std::async(std::launch::async, [&] { return import(*a, forward); });
    auto two = std::async(std::launch::async, [&] { return import(*b, backward); });
    // A deadlock would throw (PostgreSQL ends one of them): each person is queued once, by either.
    CHECK(one.get() + two.get() == 500);
    CHECK(db->scalar("SELECT count(*) FROM messages") == "500");
    CHECK(db->scalar("SELECT count(*) FROM events WHERE type = 'enqueued'") == "500");
  }
}

TEST_CASE("pg: an enqueue's messages take ids in the batch's order, events beside them") {
  auto db = postgres_database();
  auto store = db->open();
  std::vector<NewMessage> batch = {msg("zed@example.org", "nov"), msg("amy@example.org", "nov"),
                                   msg("zed@example.org", "nov"), msg("bob@example.org", "")};
  auto r = store->enqueue(batch, "import", 1000);
  REQUIRE(r.size() == 4);
  CHECK(r[0].status == EnqueueStatus::queued);
  CHECK(r[1].status == EnqueueStatus::queued);
  CHECK(r[2].status == EnqueueStatus::already_queued);
  CHECK(r[3].status == EnqueueStatus::queued);
  CHECK(r[0].id < r[1].id);
  CHECK(r[1].id < r[3].id);
  CHECK(db->scalar("SELECT recipient FROM messages WHERE id = $1", {std::to_string(r[1].id)}) ==
        "amy@example.org");
  CHECK(db->scalar("SELECT string_agg(address, ' ' ORDER BY id) FROM events") ==
        "zed@example.org amy@example.org bob@example.org");
}

TEST_CASE("pg: each daemon's own word and heartbeat are kept beside the cluster's last word") {
  auto db = postgres_database();
  auto store = db->open();
  store->set_dispatch_state({"running", "", 1000, "", "mail1:41:aa"});
  store->set_dispatch_state({"paused", "relay down", 2000, "", "mail2:42:bb"});
  store->renew_leases("mail1:41:aa", 5000, 65'000);  // mail1's heartbeat
  auto d = store->daemons();
  REQUIRE(d.size() == 2);
  CHECK(d[0].owner == "mail1:41:aa");
  CHECK(d[0].state == "running");
  CHECK(d[0].since == 1000);
  CHECK(d[0].seen_at == 5000);
  CHECK(d[1].owner == "mail2:42:bb");
  CHECK(d[1].detail == "relay down");
  CHECK(d[1].seen_at == 2000);
  CHECK(store->dispatch_state()->state == "paused");  // the last word of any
  // A daemon not seen for a day is forgotten when another says something.
  store->set_dispatch_state({"running", "", 10'000 + 86'400'000, "", "mail2:42:bb"});
  d = store->daemons();
  REQUIRE(d.size() == 1);
  CHECK(d[0].owner == "mail2:42:bb");
}
