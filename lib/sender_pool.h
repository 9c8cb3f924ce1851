// The sender threads: one per SMTP connection (smtp.max_connections), each with its own libcurl
// handle and composer. A sender takes its last look at the suppressions (the watch of those added
// since the claim; the database only when the watch cannot tell), composes, makes sure its
// previous outcome is durable, delivers, records the outcome, and reports the result. Results are
// handed to a callback on the sender's thread; the daemon posts them to its event loop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.h"
#include "smtp_reply.h"
#include "store.h"
#include "store_worker.h"
#include "suppression_watch.h"
#include "transport.h"

namespace bulkmail {

struct Job {
  ClaimedMessage message;
  std::string domain;
};

struct JobResult {
  int sender = 0;
  std::uint64_t seq = 0;  // this sender's outcome number, for StoreWorker::record
  ClaimedMessage message;
  std::string domain;
  enum class Kind { delivered, suppressed, compose_failed, aborted } kind = Kind::delivered;
  Classification classification;  // for delivered
  std::string detail;             // why suppressed, the compose error, or why aborted
  std::string message_id_header;
  std::int64_t latency_us = 0;                         // compose + deliver
  MessageState recorded_state = MessageState::queued;  // what the recorded outcome says
};

class SenderPool {
 public:
  using Done = std::function<void(JobResult)>;
  using TransportFactory =
      std::function<std::unique_ptr<Transport>(const Config&, const std::atomic<bool>& abort)>;

  SenderPool(std::shared_ptr<const Config> config, StoreWorker& store,
             const SuppressionWatch& watch, Done done, TransportFactory transports);
  ~SenderPool();

  int size() const { return static_cast<int>(slots_.size()); }
  // Queues `job` for sender `sender`, which holds at most kJobsPerSender at a time: one being
  // delivered and the next, so a sender never waits for the loop between two messages.
  void submit(int sender, Job job);
  static constexpr int kJobsPerSender = 2;
  // Senders pick up the new config before their next job.
  void reload(std::shared_ptr<const Config> config);
  // Makes deliveries in progress give up at once (after the shutdown grace period).
  void abort_in_flight() { abort_ = true; }
  // Stops the threads once their current job is done.
  void stop();

 private:
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> jobs;
    bool stop = false;
    std::thread thread;
  };
  void run(int index);
  std::shared_ptr<const Config> current_config();

  StoreWorker& store_;
  const SuppressionWatch& watch_;
  Done done_;
  TransportFactory transports_;
  std::mutex config_mu_;
  std::shared_ptr<const Config> config_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> abort_{false};
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace bulkmail
