// One SMTP connection's worker. A sender takes each job through named steps, in this order:
//   refresh   a connection for the config in effect (after a reload, or after a failure);
//   compose   the message from its template and variables;
//   wait      until this sender's previous outcome is durable (at most one sent-but-unrecorded
//             message per connection);
//   look      the last look at the suppressions, immediately before the relay gets the message
//             (the watch of those added since the claim; the store when the watch cannot tell);
//             from here until the outcome is recorded the recipient is held, and an opt-out for
//             them waits;
//   deliver   over the Transport, and classify the reply;
//   record    the outcome, with the retry policy applied, then end the hold.
// SenderPool runs one Sender per thread; tests drive one directly with a fake Transport.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "base/result.h"
#include "compose/compose_scratch.h"
#include "compose/composer.h"
#include "config/config.h"
#include "delivery/job.h"
#include "delivery/transport.h"
#include "store/started_deliveries.h"
#include "store/store.h"
#include "store/store_worker.h"
#include "store/suppression_watch.h"

namespace bulkmail {

// Opens a sender's connection to the relay for a config; `abort` is the pool's shutdown flag.
using TransportFactory =
    std::function<std::unique_ptr<Transport>(const Config&, const std::atomic<bool>& abort)>;
// A connection of a sender's own to the store, opened the first time the watch cannot answer a
// last look (Store implementations are used by one thread at a time).
using StoreOpener = std::function<std::unique_ptr<Store>()>;

// What a sender works with, shared by every sender of a pool and outliving them.
struct SenderServices {
  StoreWorker& store;
  SuppressionWatch& watch;
  TransportFactory transports;
  StoreOpener open_store;
  StartedDeliveries* started;      // learns of each delivery before the relay does; may be null
  const std::atomic<bool>& abort;  // the end of the shutdown grace period
};

class Sender {
 public:
  // `index` identifies the sender to the store worker, the watch and `started`. `composer` was
  // made from `config` and may be shared: the sender composes with a copy of its own (a Composer
  // is not thread-safe), made on the sender's thread when it first needs one.
  Sender(int index, const SenderServices& services, std::shared_ptr<const Config> config,
         std::shared_ptr<const Composer> composer);
  ~Sender();

  // The next job is handled under `config`, with a copy of `composer` (made from it) and a new
  // connection. The copy in use is freed here, before the new one is made, both on the sender's
  // thread: the new copy reuses the memory the old one gave back to that thread's allocator
  // arena, where copies made for every sender on the loading thread, beside the old ones, grew
  // the heap by a generation on each of the first SIGHUPs (BENCHMARKS.md, "Memory").
  void reload(std::shared_ptr<const Config> config, std::shared_ptr<const Composer> composer);
  // Takes `job` through every step; the result's outcome is recorded when this returns. Never
  // throws: a failure outside the message (no connection could be set up, the database gone)
  // hands the message back to the queue, and the next job starts with a fresh connection.
  JobResult handle(Job job);
  // From any thread: makes a delivery in progress fail at once.
  void interrupt();

  // A message the relay never saw (connection refused) is due again after this; the circuit
  // breaker decides when dispatch actually resumes.
  static constexpr UnixMillis kRelayRetryMs = 1000;

 private:
  // The sender's hold on the recipient it is delivering to (SuppressionWatch::look_and_hold).
  struct Hold {
    SuppressionWatch& watch;
    int sender;
    bool held = false;
    SuppressionWatch::Look take(const std::string& address, const std::string& category);
    void end();
  };

  void refresh();
  Result<ComposedMessage> compose(const ClaimedMessage& m);
  // Why the recipient may not get the message, if they may not.
  std::optional<std::string> last_look(const ClaimedMessage& m);
  void deliver(const ClaimedMessage& m, const ComposedMessage& message, JobResult& r);
  void record(JobResult& r);

  int index_;
  const SenderServices& services_;
  std::shared_ptr<const Config> config_;
  bool stale_ = true;                          // refresh before the next job
  std::shared_ptr<const Composer> prototype_;  // given with each config; never composes
  std::unique_ptr<Composer> composer_;         // this sender's copy of prototype_, made on need
  ComposeScratch scratch_;                     // composer_'s per-sender state: kept across reloads
  std::mutex transport_mu_;  // replacing the transport, and interrupt() from other threads
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Store> reader_;  // opened on first need
  std::uint64_t seq_ = 0;
  std::mt19937_64 rng_;
  Hold hold_;
};

}  // namespace bulkmail
