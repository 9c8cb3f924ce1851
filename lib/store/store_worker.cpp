#include "store/store_worker.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "base/log.h"

namespace bulkmail {

StoreWorker::StoreWorker(std::unique_ptr<Store> store, int senders,
                         std::unique_ptr<OutcomeJournal> journal, SuppressionWatch* watch)
    : store_(std::move(store)), journal_(std::move(journal)), watch_(watch), durability_(senders) {
  if (watch_) {
    watch_->on_hold_ended([this] {
      {
        std::lock_guard lock(mu_);
        hold_ended_ = true;
      }
      wake_.notify_one();
    });
  }
  thread_ = std::thread([this] { loop(); });
}

StoreWorker::~StoreWorker() { stop(); }

void StoreWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StoreWorker::Batch::clear() {
  outcomes.clear();
  tickets.clear();
  not_durable = 0;
}

bool StoreWorker::record(const Outcome& outcome, int sender, std::uint64_t seq) {
  SenderTicket ticket{sender, seq};
  durability_.check(ticket);  // before anything is journaled: a bug, not an outcome
  return add(outcome, ticket);
}

void StoreWorker::release(const Outcome& outcome) { add(outcome, std::nullopt); }

bool StoreWorker::add(const Outcome& outcome, const std::optional<SenderTicket>& ticket) {
  bool wake, durable;
  {
    std::lock_guard lock(mu_);
    // Appended under the lock, so that a journal segment and the batch taken with it always hold
    // the same outcomes.
    durable = journal_ && journal_->append(outcome);
    if (pending_.empty()) pending_.first_at = std::chrono::steady_clock::now();
    pending_.outcomes.push_back(outcome);
    if (!durable) ++pending_.not_durable;
    if (ticket) {
      // Under the lock: its sender's bookkeeping knows of it before a commit can take it.
      pending_.tickets.push_back(*ticket);
      durability_.recorded(*ticket, durable);
    }
    // A busy worker picks it up with its next group. A journaled outcome waits for the interval,
    // but the first of a group wakes an idle worker so that it sets its deadline (asleep with
    // nothing pending, it has none).
    // An outcome only a commit makes durable wakes it when it completes a group.
    // (and when it is the group's first: behind journaled ones, the worker may be waiting for
    // the longer kApplyInterval).
    wake = !busy_ &&
           (pending_.outcomes.size() == 1 || pending_.outcomes.size() >= kApplyBatch ||
            (!durable && (pending_.not_durable == 1 || pending_.not_durable >= group_.outcomes)));
  }
  if (wake) wake_.notify_one();
  return durable;
}

void StoreWorker::wait_committed(int sender, std::uint64_t seq) { durability_.wait(sender, seq); }

void StoreWorker::give_up_waits() { durability_.stop(); }

bool StoreWorker::watch_due(TimePoint now) const {
  return watch_ && watch_->watching() && now >= watched_at_ + watch_interval_;
}

void StoreWorker::set_changes_announced(bool announced, std::chrono::milliseconds fallback) {
  {
    std::lock_guard lock(mu_);
    announced_ = announced;
    watch_interval_ = announced ? fallback : kApplyInterval;
  }
  wake_.notify_one();
}

void StoreWorker::refresh_watch() {
  if (!watch_) return;
  try {
    auto changes = store_->suppression_changes(watch_cursor_);
    for (const auto& c : changes.changes) {
      if (c.added) {
        watch_->add(c.suppression);
      } else {
        watch_->lift(c.suppression.address, c.suppression.category);
      }
    }
    watch_cursor_ = changes.last;
    // Not a sign the database is back: a full disk still answers reads. Writes say so.
  } catch (const std::exception& e) {
    database_failed("reading suppression changes", e, /*wrote=*/false);
  }
  watched_at_ = std::chrono::steady_clock::now();
}

void StoreWorker::poke_watch() {
  {
    std::lock_guard lock(mu_);
    watch_poked_ = true;
  }
  wake_.notify_one();
}

void StoreWorker::on_health(HealthFn fn) {
  std::lock_guard lock(mu_);
  on_health_ = std::move(fn);
}

void StoreWorker::database_failed(const char* what, const std::exception& e, bool wrote) {
  if (away_since_) {
    away_on_write_ = away_on_write_ || wrote;
    return;  // said already
  }
  away_on_write_ = wrote;
  away_since_ = std::chrono::steady_clock::now();
  log_error(std::string(what) + " failed: " + e.what() +
            "; the database is not answering: claiming waits, outcomes wait in memory, and it is "
            "tried again");
  HealthFn fn;
  {
    std::lock_guard lock(mu_);
    fn = on_health_;
  }
  if (fn) fn(std::string(what) + " failed: " + e.what(), {});
}

void StoreWorker::database_answered(bool wrote) {
  if (!away_since_ || (away_on_write_ && !wrote)) return;
  auto away = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - *away_since_);
  away_since_.reset();
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(away.count()) / 1000);
  log_info(std::string("the database is back after ") + seconds + " s");
  HealthFn fn;
  {
    std::lock_guard lock(mu_);
    fn = on_health_;
  }
  if (fn) fn("", away);
}

bool StoreWorker::outcomes_due(TimePoint now) const {
  return !pending_.empty() && (stopping_ || pending_.outcomes.size() >= kApplyBatch ||
                               pending_.not_durable >= group_.outcomes || now >= due_at());
}

StoreWorker::TimePoint StoreWorker::due_at() const {
  if (pending_.not_durable == 0) return pending_.first_at + kApplyInterval;
  return pending_.first_at +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(group_.window);
}

void StoreWorker::set_group_commit(GroupCommit g) {
  std::lock_guard lock(mu_);
  group_ = {std::max<std::size_t>(1, g.outcomes), g.window};
  wake_.notify_one();
}

void StoreWorker::claim(const std::string& owner, std::size_t limit, UnixMillis lease_ms,
                        ClaimCallback done) {
  claim_chunk(owner, limit, lease_ms, {}, std::move(done));
}

void StoreWorker::claim_chunk(const std::string& owner, std::size_t limit, UnixMillis lease_ms,
                              std::vector<ClaimedMessage> so_far, ClaimCallback done) {
  run([this, owner, limit, lease_ms, so_far = std::move(so_far),
       done = std::move(done)](Store& s) mutable {
    // A big claim is taken in short transactions, with the outcomes and opt-outs that arrived
    // meanwhile committed between them: an opt-out never waits behind a long claim.
    std::size_t chunk = std::min(limit - so_far.size(), kClaimChunk);
    UnixMillis now = now_millis();
    std::size_t got = 0;
    try {
      auto claimed = s.claim_due(owner, chunk, now, now + lease_ms);
      got = claimed.size();
      for (auto& m : claimed) so_far.push_back(std::move(m));
      database_answered(/*wrote=*/got > 0);
    } catch (const std::exception& e) {
      // Busy or failing database: report what was claimed; the dispatcher asks again later.
      database_failed("claiming messages", e, /*wrote=*/false);
    }
    if (got == chunk && so_far.size() < limit) {
      return claim_chunk(owner, limit, lease_ms, std::move(so_far), std::move(done));
    }
    done(std::move(so_far));
  });
}

void StoreWorker::run(std::function<void(Store&)> fn) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(fn));
  }
  wake_.notify_one();
}

bool StoreWorker::try_run(std::function<void(Store&)> fn) {
  {
    std::lock_guard lock(mu_);
    if (tasks_.size() >= kMaxQueued) return false;
    tasks_.push_back(std::move(fn));
  }
  wake_.notify_one();
  return true;
}

void StoreWorker::opt_out(Suppression s, std::function<void(bool)> done) {
  bool wake;
  {
    std::unique_lock lock(mu_);
    if (opt_outs_.size() >= kMaxQueued) {
      // The database has not kept up for a long while: tell the person to try again now rather
      // than keep them waiting for an answer that would come too late.
      lock.unlock();
      done(false);
      return;
    }
    opt_outs_.push_back({std::move(s), std::move(done)});
    wake = !busy_;
  }
  if (wake) wake_.notify_one();
}

bool StoreWorker::is_stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

bool StoreWorker::write_outcomes(const Batch& batch) {
  // The store throws only when the database itself fails (disk full, I/O error). Retry rather
  // than drop an outcome: a lost "sent" would mean sending that message again. Only when the
  // daemon is stopping is there an end to it: the journaled outcomes stay in the journal for the
  // next start, and the rest are messages its lease recovery queues again.
  for (int attempt = 0;; ++attempt) {
    try {
      for (const CampaignPaused& p : store_->record_outcomes(batch.outcomes, now_millis())) {
        log_warning(describe_pause(p));
      }
      database_answered(/*wrote=*/true);
      return true;
    } catch (const std::exception& e) {
      if (is_stopping() && attempt >= kStopRetries) {
        log_error("giving up on recording " + std::to_string(batch.outcomes.size()) +
                  " outcomes while stopping: " + e.what() +
                  " (journaled ones are recorded at the next start)");
        return false;
      }
      database_failed("recording outcomes", e, /*wrote=*/true);
      if (attempt > 0 && attempt % 60 == 0)
        log_error(std::string("recording outcomes still fails, retrying: ") + e.what());
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min(1000, 10 << std::min(attempt, 6))));
    }
  }
}

void StoreWorker::commit_batch(Round& r) {
  if (write_outcomes(r.batch)) {
    // Committed: the journal's copy is no longer needed.
    if (journal_) {
      if (auto problem = journal_->remove(r.segments); problem && !remove_failed_) {
        remove_failed_ = true;  // said once: it would repeat with every group
        log_error("outcome journal: " + *problem +
                  " (it is replayed at the next start; only each message's newest outcome "
                  "counts)");
      }
    }
    durability_.committed(r.batch.tickets);
  }
  r.batch.clear();
  r.segments.clear();
}

bool StoreWorker::sort_opt_outs(std::vector<OptOut>& arrived, std::vector<OptOut>& ready,
                                bool stopping) {
  auto now = std::chrono::steady_clock::now();
  for (auto& o : arrived) {
    if (watch_) {
      // Senders see it from now on, before it is committed: no new delivery to them starts.
      watch_->add(o.suppression, SuppressionWatch::Clock::now(), /*pending=*/true);
      if (!stopping && watch_->held(o.suppression.address, o.suppression.category)) {
        o.give_up_at = now + kHoldLimit;
        waiting_opt_outs_.push_back(std::move(o));
        continue;
      }
    }
    ready.push_back(std::move(o));
  }
  arrived.clear();
  bool waited = false;
  for (auto it = waiting_opt_outs_.begin(); it != waiting_opt_outs_.end();) {
    if (stopping || now >= it->give_up_at ||
        !watch_->held(it->suppression.address, it->suppression.category)) {
      ready.push_back(std::move(*it));
      it = waiting_opt_outs_.erase(it);
      waited = true;
    } else {
      ++it;
    }
  }
  return waited;
}

void StoreWorker::commit_opt_outs(std::vector<OptOut>& ready) {
  // An opt-out is answered only once it is durable; if the database fails, the recipient is
  // told to try again rather than told it worked.
  std::vector<Suppression> suppressions;
  suppressions.reserve(ready.size());
  for (const auto& o : ready) suppressions.push_back(o.suppression);
  bool ok = true;
  try {
    store_->suppress(suppressions, now_millis());
    database_answered(/*wrote=*/true);
  } catch (const std::exception& e) {
    log_error(std::string("recording opt-outs failed (the people were told to try again): ") +
              e.what());
    database_failed("recording opt-outs", e, /*wrote=*/true);
    ok = false;
  }
  if (watch_) {
    // Committed (or not): the entry now ages like any other. One that failed still keeps the
    // messages already claimed for the person from going out; they were told to try again.
    for (const auto& s : suppressions) watch_->add(s);
  }
  for (auto& o : ready) o.done(ok);
  ready.clear();
}

void StoreWorker::start_watch() {
  if (!watch_) return;
  // Suppressions older than this are found by claims; newer ones reach the watch.
  try {
    watch_cursor_ = store_->last_event_id();
  } catch (const std::exception& e) {
    log_warning(std::string("reading the event log failed: ") + e.what());
  }
}

void StoreWorker::loop() {
  start_watch();
  Round round;
  while (true) {
    {
      std::unique_lock lock(mu_);
      busy_ = false;
      if (wait_for_work(lock) == Next::poll_watch) {
        lock.unlock();
        refresh_watch();
        continue;
      }
      if (!take_work(round)) break;  // all done
    }
    work(round);
  }
  durability_.stop();
}

StoreWorker::Next StoreWorker::wait_for_work(std::unique_lock<std::mutex>& lock) {
  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (stopping_ || !tasks_.empty() || !opt_outs_.empty() || outcomes_due(now) || hold_ended_)
      return Next::work;
    auto until = TimePoint::max();
    for (const auto& o : waiting_opt_outs_) until = std::min(until, o.give_up_at);
    if (now >= until) return Next::work;
    if (watch_poked_ || watch_due(now)) {
      watch_poked_ = false;
      return Next::poll_watch;
    }
    if (!pending_.empty()) until = std::min(until, due_at());
    if (watch_ && watch_->watching()) until = std::min(until, watched_at_ + watch_interval_);
    if (until == TimePoint::max()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, until);
    }
  }
}

bool StoreWorker::take_work(Round& r) {
  if (stopping_ && pending_.empty() && tasks_.empty() && opt_outs_.empty() &&
      waiting_opt_outs_.empty())
    return false;
  busy_ = true;
  hold_ended_ = false;
  r.stopping = stopping_;
  r.arrived.swap(opt_outs_);
  if (!tasks_.empty()) {
    r.task = std::move(tasks_.front());
    tasks_.pop_front();
  }
  return true;
}

void StoreWorker::take_batch(Round& r, bool opt_out_waited) {
  std::lock_guard lock(mu_);
  if (outcomes_due(std::chrono::steady_clock::now()) || (opt_out_waited && !pending_.empty())) {
    std::swap(r.batch, pending_);  // pending_ takes the round's cleared buffers
    if (journal_) r.segments = journal_->seal();
  }
}

void StoreWorker::work(Round& r) {
  bool waited = sort_opt_outs(r.arrived, r.ready, r.stopping);
  take_batch(r, waited);
  // An opt-out that waited for a delivery goes in after that delivery's outcome (the sender
  // recorded it before its hold ended), so that the evidence reads in the order it happened.
  if (waited && !r.batch.empty()) commit_batch(r);
  // Otherwise opt-outs first: a recipient waits for the answer; journaled outcomes can wait.
  if (!r.ready.empty()) commit_opt_outs(r.ready);
  if (!r.batch.empty()) commit_batch(r);
  if (r.task) run_task(r.task);
  // After every write: a task may have added or lifted suppressions (the API), and outcomes
  // may have suppressed a hard-bounced address. Unless the database announces those changes:
  // then only when an announcement poked the watch, or the fallback poll is due. (A busy worker
  // goes from round to round without passing wait_for_work's poll: it looks here.)
  bool refresh;
  {
    std::lock_guard lock(mu_);
    refresh = !announced_ || watch_poked_ || watch_due(std::chrono::steady_clock::now());
    watch_poked_ = false;
  }
  if (refresh) refresh_watch();
  r.task = nullptr;
}

void StoreWorker::run_task(const std::function<void(Store&)>& task) {
  try {
    task(*store_);
  } catch (const std::exception& e) {
    // While the database is away, the failure was said once already.
    if (!away_since_) log_error(std::string("store operation failed: ") + e.what());
  }
}

}  // namespace bulkmail
