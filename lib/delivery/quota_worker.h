// The shared throttle's exchanges with the database (cluster_quota.h), on a thread of their own:
// the dispatcher never waits for a round trip under its lock, and a slow or absent database holds
// back only the sending it has to. One exchange at a time, in the order asked.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "store/cluster_quota.h"

namespace bulkmail {

class QuotaWorker {
 public:
  // Gets the ask back with the answer, or with nullopt when the database failed (logged once per
  // outage, and once when it answers again).
  using Done = std::function<void(const QuotaAsk&, std::optional<QuotaAnswer>)>;

  explicit QuotaWorker(std::unique_ptr<ClusterQuota> quota);
  ~QuotaWorker();  // stop()

  void exchange(QuotaAsk ask, Done done);
  // Finishes the exchanges asked for so far, then stops the thread. Exchanges asked for later are
  // dropped unanswered.
  void stop();

 private:
  void loop();

  std::unique_ptr<ClusterQuota> quota_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::pair<QuotaAsk, Done>> queue_;
  bool stopping_ = false;
  bool failing_ = false;  // the last exchange failed (worker thread only)
  std::thread thread_;
};

}  // namespace bulkmail
