#include "store/retention.h"

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <string>

#include "store/store_worker.h"
#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("retention cutoffs: days before now, none for 0") {
  const UnixMillis now = 100LL * 86'400'000;
  auto c = retention_cutoffs({90, 365}, now);
  CHECK(c.messages_before == 10LL * 86'400'000);
  CHECK(c.events_before == now - 365LL * 86'400'000);
  auto keep = retention_cutoffs({0, 0}, now);
  CHECK_FALSE(keep.messages_before);
  CHECK_FALSE(keep.events_before);
  auto messages_only = retention_cutoffs({1, 0}, now);
  CHECK(messages_only.messages_before == now - 86'400'000);
  CHECK_FALSE(messages_only.events_before);
}

TEST_CASE_TEMPLATE(
    "the daemon's retention deletes everything due, batch after batch, and keeps the rest", B,
    BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  const UnixMillis now = now_millis();
  const UnixMillis long_ago = now - 400LL * 86'400'000;
  const int n = static_cast<int>(Retention::kBatch) * 2 + 5;  // three batches
  {
    auto s = db->open();
    std::vector<NewMessage> batch;
    for (int i = 0; i < n; ++i) {
      batch.push_back({"old", "customer-update", "u" + std::to_string(i) + "@example.com", "{}"});
    }
    s->enqueue(batch, "test", long_ago);
    s->cancel_campaign("old", "test", long_ago);
    NewMessage recent{"new", "customer-update", "fresh@example.com", "{}"};
    s->enqueue({&recent, 1}, "test", now);
    s->cancel_campaign("new", "test", now);
  }
  boost::asio::io_context io;
  StoreWorker worker(db->open(), 0);  // no sender records outcomes
  Retention retention(io, worker, {90, 365}, std::chrono::milliseconds(0));
  retention.start();
  auto busy = boost::asio::make_work_guard(io);  // the loop waits for the worker's answers
  auto left = [&] { return std::stoll(db->scalar("SELECT count(*) FROM messages")); };
  auto events = [&] { return std::stoll(db->scalar("SELECT count(*) FROM events")); };
  for (int i = 0; i < 200 && (left() > 1 || events() > 2); ++i) {
    io.run_for(std::chrono::milliseconds(50));
  }
  CHECK(left() == 1);  // the recent one
  CHECK(db->scalar("SELECT recipient FROM messages") == "fresh@example.com");
  // Their enqueued and cancelled events were over 365 days old too; the recent ones stay.
  CHECK(events() == 2);
  retention.stop();
}
