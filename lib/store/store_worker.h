// The daemon's one writer to the store, on a thread of its own so that SQLite never blocks the
// event loop. Outcomes are committed in groups. With an outcome journal, an outcome is durable as
// soon as record() has appended it there, and the worker commits what accumulated every
// kApplyInterval (or kApplyBatch outcomes); without one (or when an append fails), it commits at
// once and the outcome is durable only then. A sender waits until its last outcome is durable
// before its next delivery, so a crash can resend at most one message per connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store/outcome_journal.h"
#include "store/store.h"
#include "store/suppression.h"
#include "store/suppression_watch.h"

namespace bulkmail {

class StoreWorker {
 public:
  using ClaimCallback = std::function<void(std::vector<ClaimedMessage>)>;

  // `store` is used only from the worker's thread. `senders`: how many sender slots report
  // outcomes. `journal`: where outcomes become durable before they are committed (may be null).
  // `watch`: kept up to date with suppressions added or lifted, after every write of the worker
  // and every kApplyInterval while claimed messages may still be delivered (may be null).
  StoreWorker(std::unique_ptr<Store> store, int senders,
              std::unique_ptr<OutcomeJournal> journal = nullptr, SuppressionWatch* watch = nullptr);
  ~StoreWorker();  // finishes what was queued, then stops

  // Records an outcome; `sender` and `seq` identify it for wait_committed(). True if it is already
  // durable (in the journal); false if it will be once committed.
  bool record(const Outcome& outcome, int sender, std::uint64_t seq);
  // Claims messages; `done` runs on the worker thread with the result.
  void claim(const std::string& owner, std::size_t limit, UnixMillis lease_ms, ClaimCallback done);
  // Runs `fn` with the store on the worker thread (rare operations: state, counts).
  void run(std::function<void(Store&)> fn);
  // As run(), for work from outside (the webhook): refused (false, `fn` dropped) while
  // kMaxQueued tasks wait already, as they do only when the database has stopped answering.
  bool try_run(std::function<void(Store&)> fn);
  // How many opt-outs, and how many tasks from outside, may wait at most. An opt-out past that
  // is answered done(false) at once.
  static constexpr std::size_t kMaxQueued = 10'000;
  // While stopping, how many times a failing commit of outcomes is tried before giving up.
  static constexpr int kStopRetries = 5;
  // Records a recipient's opt-out. Opt-outs that arrive together are committed in one
  // transaction; `done(true)` runs once it is durable, `done(false)` if the database failed.
  // With a watch, senders see it at once, before the commit; and if a delivery to the recipient
  // is under way (SuppressionWatch::held), the opt-out waits for that delivery's outcome, at most
  // kHoldLimit, so that it is recorded, and answered, after the message already on its way.
  void opt_out(Suppression s, std::function<void(bool)> done);
  static constexpr std::chrono::milliseconds kHoldLimit{1000};

  // Blocks until sender `sender`'s outcome `seq` is durable, or the worker stops.
  void wait_committed(int sender, std::uint64_t seq);

  // How long a journaled outcome may wait before it is committed, and how many make a commit due.
  static constexpr std::chrono::milliseconds kApplyInterval{20};
  static constexpr std::size_t kApplyBatch = 1000;

  // Stops after everything queued so far is done.
  void stop();

 private:
  struct Pending {
    Outcome outcome;
    int sender;
    std::uint64_t seq;
  };
  struct OptOut {
    Suppression suppression;
    std::function<void(bool)> done;
    std::chrono::steady_clock::time_point give_up_at{};  // while waiting for a delivery
  };
  void loop();
  // Sorts opt-outs that arrived into those to commit now and those whose recipient's delivery is
  // under way; says whether one of those to commit had waited for a delivery.
  bool sort_opt_outs(std::vector<OptOut>& arrived, std::vector<OptOut>& ready, bool stopping);
  void commit_opt_outs(std::vector<OptOut>& ready);
  bool outcomes_due(std::chrono::steady_clock::time_point now) const;  // with mu_ held
  bool watch_due(std::chrono::steady_clock::time_point now) const;
  void refresh_watch();
  void apply(std::vector<Pending>& batch, const std::vector<std::uint64_t>& segments);
  void claim_chunk(const std::string& owner, std::size_t limit, UnixMillis lease_ms,
                   std::vector<ClaimedMessage> so_far, ClaimCallback done);

  static constexpr std::size_t kClaimChunk = 100;  // messages per claim transaction at most

  std::unique_ptr<Store> store_;
  std::unique_ptr<OutcomeJournal> journal_;  // appended to under mu_
  SuppressionWatch* watch_;
  // Worker thread only: the watch's place in the event log, when it was last brought up to date,
  // and the opt-outs waiting for a delivery to their recipient to end.
  std::int64_t watch_cursor_ = 0;
  std::chrono::steady_clock::time_point watched_at_{};
  std::vector<OptOut> waiting_opt_outs_;
  bool remove_failed_ = false;  // a journal segment could not be deleted (logged once)
  std::mutex mu_;
  std::condition_variable wake_;                   // work arrived
  std::deque<std::condition_variable> committed_;  // per sender: its outcome was committed
  std::vector<Pending> outcomes_;
  std::size_t not_durable_ = 0;  // outcomes_ entries that only a commit makes durable
  std::chrono::steady_clock::time_point first_pending_;  // when outcomes_ stopped being empty
  std::deque<std::function<void(Store&)>> tasks_;
  std::vector<OptOut> opt_outs_;
  bool hold_ended_ = false;  // a delivery an opt-out waits for has ended
  std::vector<std::uint64_t> committed_seq_;
  // Per sender: its oldest outcome that only a commit makes durable (the journal append failed)
  // and that is not committed yet, 0 when none; later outcomes are not durable before it is.
  std::vector<std::uint64_t> undurable_from_;
  std::vector<std::uint64_t> waiting_for_;  // per sender: the seq it waits for, 0 when not waiting
  bool busy_ = false;                       // the worker is working, not waiting
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace bulkmail
