// What PostgresStore must do beyond the behaviour suite (store_test.cpp), because several daemons
// share its database at once.
#include "store/postgres/pg_store.h"

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>

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
  other.exec("SELECT pg_advisory_xact_lock(1718579815, hashtext($1))",
             pg::Params().add("x@example.org"));
  auto enqueue = std::async(std::launch::async,
                            [&] { return enqueue_one(*store, msg("x@example.org", "nov")); });
  CHECK(enqueue.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  // Another address is not held up.
  CHECK(enqueue_one(*db->open(), msg("y@example.org", "nov")).status == EnqueueStatus::queued);
  tx.commit();
  CHECK(enqueue.get().status == EnqueueStatus::queued);
}
