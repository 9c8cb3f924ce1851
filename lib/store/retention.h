// Personal data has a lifetime: the daemon deletes finished messages after
// retention.message_days and events after retention.event_days (never the evidence of a
// suppression in force; see Store::prune), in small batches on the store worker, so that no
// delivery's commit waits long behind it. The first pass runs kFirstDelay after start, then one
// every kInterval; a pass goes on batch after batch, kBatchGap apart, until nothing is left.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>

#include "base/clock.h"
#include "config/config.h"
#include "store/store.h"

namespace bulkmail {

class StoreWorker;

// Where a pass cuts at `now`: nothing is cut for a kind whose days are 0.
struct RetentionCutoffs {
  std::optional<UnixMillis> messages_before;
  std::optional<UnixMillis> events_before;
};
RetentionCutoffs retention_cutoffs(const RetentionConfig& config, UnixMillis now);

class Retention {
 public:
  static constexpr std::size_t kBatch = 1000;
  static constexpr std::chrono::seconds kFirstDelay{10};
  static constexpr std::chrono::hours kInterval{1};
  static constexpr std::chrono::milliseconds kBatchGap{50};

  // `first_delay`: when the first pass runs (tests shorten it).
  Retention(boost::asio::io_context& io, StoreWorker& worker, RetentionConfig config,
            std::chrono::milliseconds first_delay = kFirstDelay);
  ~Retention();
  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  void start();
  // On the loop: the next batch uses the new days.
  void reload(RetentionConfig config);
  // On the loop: no batch starts after this one.
  void stop();

 private:
  void schedule(std::chrono::milliseconds delay);
  void run_batch();
  void batch_done(PruneResult r);

  boost::asio::io_context& io_;
  StoreWorker& worker_;
  RetentionConfig config_;
  std::chrono::milliseconds first_delay_;
  boost::asio::steady_timer timer_;
  PruneResult pass_;  // what this pass removed so far
  // Outlives every batch's callback only as a weak_ptr: a batch that finishes after this object is
  // gone finds it expired, on the loop, and does nothing.
  std::shared_ptr<Retention*> self_;
};

}  // namespace bulkmail
