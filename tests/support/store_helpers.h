// Small helpers the store's tests share: the behaviour suite (store_test) and SQLite's own
// (sqlite_store_test).
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "store/store.h"
#include "test_store.h"

namespace bulkmail::test {

inline NewMessage msg(const std::string& to, const std::string& campaign = "c1",
                      const std::string& category = "customer-update") {
  return NewMessage{campaign, category, to, "{}"};
}

inline EnqueueResult enqueue_one(Store& s, const NewMessage& m, UnixMillis now = 1000) {
  return s.enqueue({&m, 1}, "test", now).front();
}

// Queues `n` messages of `campaign` to <prefix>0@example.com, <prefix>1@example.com, ... and
// records each as sent (the relay said 250) at `sent_at` with Message-ID <id@mail.example.com>;
// their ids are added to `ids`.
inline void add_sent(Store& s, std::vector<MessageId>& ids, int n, UnixMillis sent_at,
                     const std::string& campaign, const std::string& prefix,
                     const std::string& category = "customer-update") {
  std::vector<NewMessage> batch;
  for (int i = 0; i < n; ++i) {
    batch.push_back({campaign, category, prefix + std::to_string(i) + "@example.com", "{}"});
  }
  s.enqueue(batch, "test", sent_at - 1000);
  auto claimed = s.claim_due("test", static_cast<std::size_t>(n), sent_at, sent_at + 60'000);
  REQUIRE(claimed.size() == static_cast<std::size_t>(n));
  std::vector<Outcome> outcomes;
  for (const auto& m : claimed) {
    outcomes.push_back({m.id, MessageState::sent, 250, "250 2.0.0 Ok", 0,
                        "<" + std::to_string(m.id) + "@mail.example.com>", BounceClass::unknown});
    ids.push_back(m.id);
  }
  s.record_outcomes(outcomes, sent_at);
}

// SentQueue (sent_queue.h) on a fresh database of `Backend` (test_store.h): `n` messages of
// `campaign` to r0@example.com, r1@example.com, ..., sent at `sent_at`.
template <class Backend>
struct SentQueueOn {
  std::unique_ptr<TestDatabase> db = Backend::make();
  std::unique_ptr<Store> store = db->open();
  std::vector<MessageId> ids;

  explicit SentQueueOn(int n, UnixMillis sent_at = 10'000, const std::string& campaign = "nov") {
    add(n, sent_at, campaign, "r");
  }

  void add(int n, UnixMillis sent_at, const std::string& campaign, const std::string& prefix,
           const std::string& category = "customer-update") {
    add_sent(*store, ids, n, sent_at, campaign, prefix, category);
  }
};

}  // namespace bulkmail::test
