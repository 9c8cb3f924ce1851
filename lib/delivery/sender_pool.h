// The sender threads: one per SMTP connection (smtp.max_connections), each with its own libcurl
// handle and composer. A sender takes a job from its JobSource, composes it, makes sure its
// previous outcome is durable, takes its last look at the suppressions (the watch of those added
// since the claim; the database only when the watch cannot tell) and holds the recipient from
// that look until the outcome is recorded, delivers, records the outcome, and hands the result
// back with its next request for a job.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "delivery/job.h"
#include "delivery/smtp_reply.h"
#include "delivery/transport.h"
#include "store/started_deliveries.h"
#include "store/store.h"
#include "store/store_worker.h"
#include "store/suppression_watch.h"

namespace bulkmail {

class SenderPool {
 public:
  using TransportFactory =
      std::function<std::unique_ptr<Transport>(const Config&, const std::atomic<bool>& abort)>;
  // A connection of a sender's own to the store, opened the first time the watch cannot answer
  // a last look (Store implementations are used by one thread at a time).
  using StoreOpener = std::function<std::unique_ptr<Store>()>;

  // Starts smtp.max_connections senders, each taking jobs from `jobs` until it says stop.
  // `started`, if given, learns of each delivery just before the relay gets the message.
  SenderPool(std::shared_ptr<const Config> config, StoreWorker& store, SuppressionWatch& watch,
             JobSource& jobs, TransportFactory transports, StoreOpener open_store,
             StartedDeliveries* started = nullptr);
  ~SenderPool();

  int size() const { return static_cast<int>(threads_.size()); }
  // How much lower than the rest of the daemon senders run (a nice value, added to the process's).
  static constexpr int kSenderNice = 10;
  // Senders pick up the new config before their next job.
  void reload(std::shared_ptr<const Config> config);
  // Makes deliveries in progress give up at once (after the shutdown grace period): they are
  // handed back to the queue, their attempt not counted.
  void abort_in_flight();
  // Stops the threads once their current job is done.
  void stop();

 private:
  void run(int index);
  std::shared_ptr<const Config> current_config();

  StoreWorker& store_;
  SuppressionWatch& watch_;
  JobSource& jobs_;
  TransportFactory transports_;
  StoreOpener open_store_;
  StartedDeliveries* started_;
  std::mutex config_mu_;
  std::shared_ptr<const Config> config_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> abort_{false};
  std::mutex transports_mu_;
  std::vector<Transport*> transports_in_use_;  // by sender, for abort_in_flight()
  std::vector<std::thread> threads_;
};

}  // namespace bulkmail
