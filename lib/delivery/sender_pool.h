// The sender threads: one per SMTP connection (smtp.max_connections), each running a Sender
// (sender.h) with its own libcurl handle and composer. A thread asks its JobSource for a job,
// hands it to its Sender, and gives the result back with its next request.
//
// The composers are made where a config is loaded (prepare()), not by the senders: a config whose
// templates cannot be loaded is refused there, at start or on SIGHUP, and never reaches a sender.
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

  // A config made ready for `senders` senders: one Composer each, all from one reading of the
  // templates, and one more, unsigned, for the webhook's compose check.
  struct Prepared {
    std::shared_ptr<const Config> config;
    std::vector<std::unique_ptr<Composer>> composers;
    std::unique_ptr<Composer> for_checks;
  };
  // Reads the templates once; the other composers are compiled from that text. The error names
  // the template file or DKIM key that cannot be loaded.
  static Result<Prepared> prepare(std::shared_ptr<const Config> config, int senders);

  // One sender per composer of `prepared` (smtp.max_connections of them), each to take jobs from
  // `jobs`, once start()ed, until it says stop. `started`, if given, learns of each delivery just
  // before the relay gets the message.
  SenderPool(Prepared prepared, StoreWorker& store, SuppressionWatch& watch, JobSource& jobs,
             TransportFactory transports, StoreOpener open_store,
             StartedDeliveries* started = nullptr);
  ~SenderPool();

  // Starts the sender threads: from here on they ask `jobs` for work.
  void start();
  int size() const { return static_cast<int>(senders_.size()); }
  // How much lower than the rest of the daemon senders run (a nice value, added to the process's).
  static constexpr int kSenderNice = 10;
  // Senders pick up the new config, prepared for size() senders, before their next job.
  void reload(Prepared prepared);
  // Makes deliveries in progress give up at once (after the shutdown grace period): they are
  // handed back to the queue, their attempt not counted.
  void abort_in_flight();
  // Stops the threads once their current job is done.
  void stop();

 private:
  void run(int index);

  JobSource& jobs_;
  std::atomic<bool> abort_{false};
  SenderServices services_;
  std::mutex config_mu_;
  Prepared next_;  // the newest reload's, each composer taken by its sender
  std::atomic<std::uint64_t> generation_{0};
  std::vector<std::unique_ptr<Sender>> senders_;
  std::vector<std::thread> threads_;
};

}  // namespace bulkmail
