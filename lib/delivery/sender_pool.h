// The sender threads: one per SMTP connection (smtp.max_connections), each running a Sender
// (sender.h) with its own libcurl handle and composer. A thread asks its JobSource for a job,
// hands it to its Sender, and gives the result back with its next request.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config/config.h"
#include "delivery/job.h"
#include "delivery/sender.h"

namespace bulkmail {

class SenderPool {
 public:
  using TransportFactory = bulkmail::TransportFactory;
  using StoreOpener = bulkmail::StoreOpener;

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

  JobSource& jobs_;
  std::atomic<bool> abort_{false};
  SenderServices services_;
  std::mutex config_mu_;
  std::shared_ptr<const Config> config_;
  std::atomic<std::uint64_t> generation_{0};
  std::vector<std::unique_ptr<Sender>> senders_;
  std::vector<std::thread> threads_;
};

}  // namespace bulkmail
