#include "store_worker.h"

#include <doctest/doctest.h>

#include <future>
#include <set>

#include "sqlite_store.h"
#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("a claim larger than one transaction's share comes back whole, once") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  {
    SqliteStore s(path);
    std::vector<NewMessage> batch;
    for (int i = 0; i < 250; ++i)
      batch.push_back({"", "customer-update", "u" + std::to_string(i) + "@example.com", "{}"});
    s.enqueue(batch, "test", 1000);
  }
  StoreWorker worker(std::make_unique<SqliteStore>(path), 1);
  std::promise<std::vector<ClaimedMessage>> first, second;
  worker.claim("me", 240, 60'000, [&](std::vector<ClaimedMessage> c) { first.set_value(c); });
  auto a = first.get_future().get();
  worker.claim("me", 240, 60'000, [&](std::vector<ClaimedMessage> c) { second.set_value(c); });
  auto b = second.get_future().get();
  CHECK(a.size() == 240);
  CHECK(b.size() == 10);
  std::set<MessageId> ids;
  for (const auto& m : a) ids.insert(m.id);
  for (const auto& m : b) ids.insert(m.id);
  CHECK(ids.size() == 250);
}

TEST_CASE("opt-outs are answered once committed, all of a group together") {
  TempDir dir;
  std::string path = (dir.path() / "q.db").string();
  StoreWorker worker(std::make_unique<SqliteStore>(path), 1);
  std::vector<std::promise<bool>> done(20);
  for (int i = 0; i < 20; ++i) {
    worker.opt_out({"r" + std::to_string(i) + "@example.com", i % 2 ? "" : "customer-update",
                    SuppressionReason::unsubscribe, "one-click", 0},
                   [&done, i](bool ok) { done[static_cast<std::size_t>(i)].set_value(ok); });
  }
  for (auto& d : done) CHECK(d.get_future().get());
  SqliteStore check(path);
  CHECK(check.find_suppression("r3@example.com", "research-invitation")->source == "one-click");
  CHECK(check.find_suppression("r4@example.com", "customer-update"));
  CHECK_FALSE(check.find_suppression("r4@example.com", "research-invitation"));
}
