// A real queue file holding messages the relay has taken (state sent), for the tests of what
// comes back by mail on SQLite (report_match_test, the webhook's and bulkmailctl's tests);
// SentQueueOn (store_helpers.h) is the same on either backend.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "store_helpers.h"
#include "temp_dir.h"

namespace bulkmail::test {

// Messages of `campaign` to <prefix>0@example.com, <prefix>1@example.com, ..., each sent (the
// relay said 250) at `sent_at` with Message-ID <id@mail.example.com>.
struct SentQueue {
  TempDir dir;
  std::string path = (dir / "q.db").string();
  SqliteStore s{path};
  std::vector<MessageId> ids;

  explicit SentQueue(int n, UnixMillis sent_at = 10'000, const std::string& campaign = "nov") {
    add(n, sent_at, campaign, "r");
  }

  void add(int n, UnixMillis sent_at, const std::string& campaign, const std::string& prefix,
           const std::string& category = "customer-update") {
    add_sent(s, ids, n, sent_at, campaign, prefix, category);
  }
};

}  // namespace bulkmail::test

namespace bulkmail::test {

// Campaign "nov" in `s` as bulkmaild and reports by mail leave it: 4 messages the relay took and 1
// it refused as a block, then a hard bounce and a complaint by mail (with a pause after 1 answered
// message, so that it pauses itself), and 2 messages still waiting. Returns the campaign as the
// store has it, paused.
inline Campaign campaign_that_paused_itself(Store& s) {
  std::vector<NewMessage> batch;
  for (int i = 0; i < 5; ++i) {
    batch.push_back({"nov", "customer-update", "r" + std::to_string(i) + "@example.com", "{}"});
  }
  s.enqueue(batch, "test", 1000);
  auto claimed = s.claim_due("test", 5, 2000, 60'000);
  REQUIRE(claimed.size() == 5);
  std::vector<Outcome> outcomes;
  for (const ClaimedMessage& m : claimed) {
    bool blocked = m.id == claimed.back().id;
    outcomes.push_back({m.id, blocked ? MessageState::failed : MessageState::sent,
                        blocked ? 554 : 250, blocked ? "554 5.7.1 blocked" : "250 2.0.0 Ok", 0, "",
                        blocked ? BounceClass::policy : BounceClass::unknown});
  }
  s.record_outcomes(outcomes, 3000);
  std::vector<NewMessage> waiting = {{"nov", "customer-update", "w1@example.com", "{}"},
                                     {"nov", "customer-update", "w2@example.com", "{}"}};
  s.enqueue(waiting, "test", 4000);
  std::vector<ReceivedReport> reports(2);
  reports[0].digest = std::string(32, 'a');
  reports[0].counters = {"report:bounce", "class:hard"};
  reports[0].feedback = {{claimed[0].id, FeedbackKind::hard_bounce, "5.1.1",
                          "550 5.1.1 user unknown", "mx.example.com"}};
  reports[1].digest = std::string(32, 'b');
  reports[1].counters = {"report:complaint"};
  reports[1].feedback = {{claimed[1].id, FeedbackKind::complaint, "abuse", "", "fbl.example.com"}};
  FeedbackPolicy policy;
  policy.min_sample = 1;
  s.record_reports(reports, policy, 5000);
  auto c = s.campaign("nov");
  REQUIRE(c);
  REQUIRE(c->paused_at);
  REQUIRE_FALSE(c->pause_reason.empty());
  return *c;
}

}  // namespace bulkmail::test
