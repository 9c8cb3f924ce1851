// The sender threads: one per SMTP connection (smtp.max_connections), each running a Sender
// (sender.h) with its own libcurl handle and composer. A thread asks its JobSource for a job,
// hands it to its Sender, and gives the result back with its next request.
//
// The templates and DKIM key are read and checked where a config is loaded (prepare()): a config
// whose templates cannot be loaded is refused there, at start or on SIGHUP, and never reaches a
// sender. prepare() makes one Composer of them; each sender composes with its own copy, made on
// the sender's thread (Sender::reload says why).
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

  // A config made ready for the senders: the Composer they copy, and a copy, unsigned, for the
  // webhook's compose check.
  struct Prepared {
    std::shared_ptr<const Config> config;
    std::shared_ptr<const Composer> composer;  // only ever copied
    std::unique_ptr<Composer> for_checks;
  };
  // Reads the templates and the DKIM key; the error names the template file or key that cannot
  // be loaded.
  static Result<Prepared> prepare(std::shared_ptr<const Config> config);

  // smtp.max_connections senders, each to take jobs from `jobs`, once start()ed, until it says
  // stop. `started`, if given, learns of each delivery just before the relay gets the message.
  SenderPool(Prepared prepared, StoreWorker& store, SuppressionWatch& watch, JobSource& jobs,
             TransportFactory transports, StoreOpener open_store,
             StartedDeliveries* started = nullptr);
  ~SenderPool();

  // Starts the sender threads: from here on they ask `jobs` for work.
  void start();
  int size() const { return static_cast<int>(senders_.size()); }
  // How much lower than the rest of the daemon senders run (a nice value, added to the process's).
  static constexpr int kSenderNice = 10;
  // Senders pick up the new config before their next job.
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
  Prepared next_;  // the newest reload's
  std::atomic<std::uint64_t> generation_{0};
  std::vector<std::unique_ptr<Sender>> senders_;
  std::vector<std::thread> threads_;
};

}  // namespace bulkmail
