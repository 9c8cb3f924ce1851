// The daemon's one writer to the store, on a thread of its own so that SQLite never blocks the
// event loop. Outcomes are committed in groups. With an outcome journal, an outcome is durable as
// soon as record() has appended it there, and the worker commits what accumulated every
// kApplyInterval (or kApplyBatch outcomes); without one (or when an append fails), it commits at
// once and the outcome is durable only then. A sender waits until its last outcome is durable
// before its next delivery (durability.h), so a crash can resend at most one message per
// connection.
//
// Its jobs, each a part of the loop that runs on its thread: the group commit of outcomes (record,
// release), claims in short transactions (claim), other work on the store (run, try_run),
// opt-outs (opt_out), and keeping the suppression watch up to date.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "store/durability.h"
#include "store/outcome_journal.h"
#include "store/store.h"
#include "store/suppression.h"
#include "store/suppression_watch.h"

namespace bulkmail {

class StoreWorker {
 public:
  using ClaimCallback = std::function<void(std::vector<ClaimedMessage>)>;

  // `store` is used only from the worker's thread. `senders`: how many senders record outcomes
  // and wait for them to be durable, numbered 0 to senders-1 (0: none does); releases need no
  // sender. `journal`: where outcomes become durable before they are committed (may be null).
  // `watch`: kept up to date with suppressions added or lifted, after every write of the worker
  // and every kApplyInterval while claimed messages may still be delivered (may be null).
  StoreWorker(std::unique_ptr<Store> store, int senders,
              std::unique_ptr<OutcomeJournal> journal = nullptr, SuppressionWatch* watch = nullptr);
  ~StoreWorker();  // finishes what was queued, then stops

  // Records a sender's outcome: `sender` (0 to senders-1) and `seq` (1 for its first outcome,
  // counting up) identify it for wait_committed(). True if it is already durable (in the
  // journal); false if it will be once committed. A sender or seq out of range is a bug: it
  // throws std::out_of_range, and nothing is recorded.
  bool record(const Outcome& outcome, int sender, std::uint64_t seq);
  // Records an outcome nobody waits for: a claimed message handed back undelivered (the
  // dispatcher's releases). Journaled and committed with its group like any other outcome, but
  // no sender's: it takes no sender's place, and no one waits for it.
  void release(const Outcome& outcome);
  // Blocks until sender `sender`'s outcome `seq` is durable (at once for 0: none yet), or the
  // worker stops, or give_up_waits() was called. A sender out of range throws std::out_of_range.
  void wait_committed(int sender, std::uint64_t seq);
  // Every wait_committed() returns at once, now and from now on: the daemon's shutdown grace
  // period is over and no sender may start another delivery, so none needs to wait for a
  // database that cannot record (a full disk) before it gives its job back.
  void give_up_waits();

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

  // How long a journaled outcome may wait before it is committed, and how many make a commit due.
  static constexpr std::chrono::milliseconds kApplyInterval{20};
  static constexpr std::size_t kApplyBatch = 1000;

  // When outcomes that only a commit makes durable are committed: once `outcomes` of them wait,
  // or the first of them has waited `window`. The default commits each group at once. Where a
  // commit costs the database more than a sender's short wait costs the daemon (PostgreSQL, whose
  // every transaction and every statement the server plans and logs), gathering the senders'
  // outcomes into fewer, larger groups takes the load off the server. Senders still wait for their
  // own outcome before the next delivery, so what a crash can resend is unchanged.
  struct GroupCommit {
    std::size_t outcomes = 1;
    std::chrono::microseconds window{0};
  };
  void set_group_commit(GroupCommit g);  // from any thread

  // Stops after everything queued so far is done.
  void stop();

  // Told on the worker's thread when the database stops answering (a claim, a commit of
  // outcomes or opt-outs, or a read of the event log failed: `trouble` says what) and when it
  // answers again (`trouble` empty, `away` how long it was gone). Each change is logged once,
  // whoever listens; outcomes wait in memory meanwhile, and their senders with them.
  using HealthFn = std::function<void(const std::string& trouble, std::chrono::milliseconds away)>;
  void on_health(HealthFn fn);
  // Looks at the event log for suppressions made elsewhere now, not at the next poll (another
  // daemon announced one: LISTEN). From any thread.
  void poke_watch();
  // Whether the database announces every suppression change (LISTEN/NOTIFY: each one pokes the
  // watch, this daemon's own included). While it does, the event log is read only on a poke and
  // once every `fallback` as the fallback; while it does not (SQLite, or the LISTEN
  // connection lost), after every write of the worker and every kApplyInterval.
  void set_changes_announced(bool announced, std::chrono::milliseconds fallback = kAnnouncedPoll);
  static constexpr std::chrono::milliseconds kAnnouncedPoll{1000};

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  // Outcomes recorded and not yet committed, committed together.
  struct Batch {
    std::vector<Outcome> outcomes;
    std::vector<SenderTicket> tickets;  // the senders' outcomes among them (not the releases)
    std::size_t not_durable = 0;        // outcomes that only a commit makes durable
    TimePoint first_at{};               // when the first of them was recorded
    bool empty() const { return outcomes.empty(); }
    void clear();  // keeps the capacity, for the next group
  };
  struct OptOut {
    Suppression suppression;
    std::function<void(bool)> done;
    TimePoint give_up_at{};  // while waiting for a delivery
  };
  // What one turn of the loop works on. Its buffers are kept from turn to turn.
  struct Round {
    bool stopping = false;
    std::vector<OptOut> arrived;          // opt-outs taken from opt_outs_
    std::vector<OptOut> ready;            // opt-outs to commit now
    Batch batch;                          // outcomes to commit now
    std::vector<std::uint64_t> segments;  // the journal segments that hold them
    std::function<void(Store&)> task;     // empty when none
  };
  enum class Next { work, poll_watch };

  bool add(const Outcome& outcome, const std::optional<SenderTicket>& ticket);
  void loop();
  // With mu_ held (in `lock`): sleeps until there is work, or the watch is due for a poll.
  Next wait_for_work(std::unique_lock<std::mutex>& lock);
  // With mu_ held: takes the work of the next round; false when stopping and all is done.
  bool take_work(Round& r);
  void work(Round& r);
  // Takes the pending outcomes into the round when their commit is due, or when an opt-out that
  // waited for a delivery must follow its outcome.
  void take_batch(Round& r, bool opt_out_waited);
  void commit_batch(Round& r);
  // Sorts opt-outs that arrived into those to commit now and those whose recipient's delivery is
  // under way; says whether one of those to commit had waited for a delivery.
  bool sort_opt_outs(std::vector<OptOut>& arrived, std::vector<OptOut>& ready, bool stopping);
  void commit_opt_outs(std::vector<OptOut>& ready);
  void run_task(const std::function<void(Store&)>& task);
  bool outcomes_due(TimePoint now) const;  // with mu_ held
  TimePoint due_at() const;                // with mu_ held and outcomes pending: when they are due
  bool watch_due(TimePoint now) const;     // with mu_ held
  void start_watch();
  void refresh_watch();
  // Commits `batch`, retrying while the database fails; false if it gave up (only when stopping).
  bool write_outcomes(const Batch& batch);
  bool is_stopping();  // takes mu_
  // The database failed `what` (or answered): logs and reports each change (on_health).
  // `wrote`: the failure was a write's, or the success wrote something. A claim that found
  // nothing due writes nothing, so it commits even on a full disk: it clears only a failure of
  // claims, never one of recording.
  void database_failed(const char* what, const std::exception& e, bool wrote);
  void database_answered(bool wrote);
  void claim_chunk(const std::string& owner, std::size_t limit, UnixMillis lease_ms,
                   std::vector<ClaimedMessage> so_far, ClaimCallback done);

  static constexpr std::size_t kClaimChunk = 100;  // messages per claim transaction at most

  std::unique_ptr<Store> store_;
  std::unique_ptr<OutcomeJournal> journal_;  // appended to under mu_
  SuppressionWatch* watch_;
  Durability durability_;  // told of each sender's outcome under mu_, before it can be committed
  // Worker thread only: the watch's place in the event log, when it was last brought up to date,
  // and the opt-outs waiting for a delivery to their recipient to end.
  std::int64_t watch_cursor_ = 0;
  TimePoint watched_at_{};
  std::vector<OptOut> waiting_opt_outs_;
  bool remove_failed_ = false;           // a journal segment could not be deleted (logged once)
  std::optional<TimePoint> away_since_;  // the database stopped answering then
  bool away_on_write_ = false;           // ... and a write said so
  HealthFn on_health_;                   // set under mu_, called on the worker thread
  std::mutex mu_;
  std::condition_variable wake_;  // work arrived
  Batch pending_;                 // recorded, not yet taken by a round
  std::deque<std::function<void(Store&)>> tasks_;
  std::vector<OptOut> opt_outs_;
  bool hold_ended_ = false;   // a delivery an opt-out waits for has ended
  bool watch_poked_ = false;  // another daemon announced a suppression
  std::chrono::milliseconds watch_interval_ = kApplyInterval;
  bool announced_ = false;  // set_changes_announced; under mu_
  GroupCommit group_;       // under mu_
  bool busy_ = false;       // the worker is working, not waiting
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bulkmail
