// PostgresStore's side of what comes back by mail: finding the message a report names, and taking
// reports in (store.h, record_reports). The port of sqlite_feedback.cpp, statement for statement.
// SQLite has one writer at a time; here several bulkmailctl processes (an MTA runs one per report)
// and daemons take reports in at once, so each read that a write depends on locks its row or is
// the write itself (an upsert). READ COMMITTED: each statement sees what others committed.
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/postgres/pg_sql.h"
#include "store/postgres/pg_store.h"

namespace bulkmail {

namespace {
constexpr const char* kMessageColumns =
    "SELECT id, coalesce(campaign, ''), category, recipient, state, coalesce(message_id, ''), "
    "updated_at, coalesce(feedback, '') FROM messages ";

// How many times record_reports runs its transaction when PostgreSQL ends it to break a deadlock.
constexpr int kAttempts = 3;

std::optional<SentMessage> read_message(const pg::Result& r) {
  if (r.empty()) return std::nullopt;
  return SentMessage{r.int64(0, 0),
                     r.string(0, 1),
                     r.string(0, 2),
                     r.string(0, 3),
                     parse_message_state(r.text(0, 4)).value_or(MessageState::cancelled),
                     r.string(0, 5),
                     r.int64(0, 6),
                     r.string(0, 7)};
}

// Runs `transaction` (which opens and commits its own) again when it loses a deadlock: two
// processes taking reports in can each hold a row the other waits for (two messages or two
// campaigns of a batch, in opposite orders). PostgreSQL rolls one back whole, so running it again
// is safe; the caller sees one call.
template <class F>
auto retrying_deadlocks(F transaction) {
  for (int attempt = 1;; ++attempt) {
    try {
      return transaction();
    } catch (const pg::Error& e) {
      if (!e.retryable() || attempt == kAttempts) throw;
    }
  }
}
}  // namespace

void PostgresStore::prepare_feedback_statements() {
  c_.prepare("feedback_find_message", std::string(kMessageColumns) + "WHERE id = $1");
  // apply_feedback's read: the message stays locked until the reports commit, so that two reports
  // about it taken in at once (a delay notice and the final failure) act one after the other, the
  // second seeing the first's state, feedback and soft-bounce event.
  c_.prepare("feedback_lock_message", std::string(kMessageColumns) + "WHERE id = $1 FOR UPDATE");
  c_.prepare("feedback_find_by_header",
             std::string(kMessageColumns) + "WHERE message_id = $1 ORDER BY id LIMIT 1");
  // The duplicate check is the insert itself (affected() 0: seen before). A process inserting the
  // same digest at the same time waits for the first to commit and then inserts nothing; a select
  // before the insert would let both find no row.
  c_.prepare("feedback_seen",
             "INSERT INTO received_reports (digest, at) VALUES ($1, $2) ON CONFLICT (digest) DO "
             "NOTHING");
  // Added in the database, never read and written back: no process's count is lost.
  c_.prepare("feedback_count",
             "INSERT INTO feedback_counters (name, count) VALUES ($1, $2) ON CONFLICT (name) DO "
             "UPDATE SET count = feedback_counters.count + EXCLUDED.count");
  c_.prepare("feedback_update_message",
             "UPDATE messages SET state = $1, feedback = $2 WHERE id = $3");
  // The address's run, locked until the reports commit. SELECT ... FOR UPDATE locks no row that
  // does not exist, so two first soft bounces to one address at once would both start a run of 1:
  // instead an address without a run gets a row of count 0 (no run), inserted or locked in one
  // statement; the second process waits on it. The transaction always saves a real run over it
  // or deletes it (count_soft_bounce), so no other process ever sees a count of 0.
  c_.prepare("feedback_soft_run",
             "INSERT INTO soft_bounces (address, count, first_at, last_message, last_sent_at) "
             "VALUES ($1, 0, 0, 0, 0) ON CONFLICT (address) DO UPDATE SET count = "
             "soft_bounces.count RETURNING count, first_at, last_message, last_sent_at");
  // A message to the address the relay took, that no report came back about, sent between the
  // run's latest bounced message and this one: the address took mail in between.
  c_.prepare("feedback_delivered_between",
             "SELECT EXISTS (SELECT 1 FROM messages WHERE recipient = $1 AND state = 'sent' AND "
             "feedback IS NULL AND updated_at > $2 AND updated_at < $3 AND id <> $4)");
  c_.prepare("feedback_save_run",
             "INSERT INTO soft_bounces (address, count, first_at, last_message, last_sent_at) "
             "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address) DO UPDATE SET count = "
             "EXCLUDED.count, first_at = EXCLUDED.first_at, last_message = EXCLUDED.last_message, "
             "last_sent_at = EXCLUDED.last_sent_at");
  c_.prepare("feedback_end_run", "DELETE FROM soft_bounces WHERE address = $1");
  // Whether a soft bounce of this message was counted already (its event, by the address's
  // index).
  c_.prepare("feedback_counted_before",
             "SELECT EXISTS (SELECT 1 FROM events WHERE address = $1 AND message = $2 AND type = "
             "'soft-bounce')");
  // The campaign row, locked until the transaction commits (tally, pause_if_tripped): whoever
  // judges its automatic pause waits for the one judging it now, then sees what that one did.
  c_.prepare("feedback_lock_campaign", "SELECT 1 FROM campaigns WHERE name = $1 FOR UPDATE");
  // Only `off` is raised: local, remote_write, on and remote_apply all wait for this server's
  // disk, and the stronger ones (a synchronous standby) stay as the administrator set them.
  c_.prepare("feedback_durable",
             "SELECT set_config('synchronous_commit', 'on', true) WHERE "
             "current_setting('synchronous_commit') = 'off'");
}

std::optional<SentMessage> PostgresStore::find_message(MessageId id) {
  return read_message(c_.run("feedback_find_message", pg::Params().add(id)));
}

std::optional<SentMessage> PostgresStore::find_message_by_header(const std::string& message_id) {
  if (message_id.empty()) return std::nullopt;
  return read_message(c_.run("feedback_find_by_header", pg::Params().add(message_id)));
}

std::optional<SentMessage> PostgresStore::find_message_sent_to(const std::string& address,
                                                               const std::string& category,
                                                               UnixMillis since) {
  return read_message(c_.exec(std::string(kMessageColumns) +
                                  "WHERE recipient = $1 AND category = $2 AND state IN ('sent', "
                                  "'bounced', 'complained') AND updated_at >= $3 ORDER BY "
                                  "updated_at, id LIMIT 1",
                              pg::Params().add(address).add(category).add(since)));
}

void PostgresStore::count_feedback(const std::string& name) {
  c_.run("feedback_count", pg::Params().add(name).add(1));
}

std::vector<ReportRecorded> PostgresStore::record_reports(std::span<const ReceivedReport> reports,
                                                          const FeedbackPolicy& policy,
                                                          UnixMillis now) {
  return retrying_deadlocks([&] {
    pg::Transaction tx(c_);
    // A complaint is an opt-out: its suppression must survive a power failure. PostgreSQL's
    // commit waits for the disk unless the session turned synchronous_commit off (the role's or
    // the connection string's setting, for speed): then it is on for this transaction only.
    c_.run("feedback_durable", pg::Params());
    tallies_.clear();  // counted afresh in this transaction, then kept up to date report by report
    // Every process taking reports in writes the same few counter rows: they are added last, once
    // each, in name order, so they stay locked only until the commit and two processes never wait
    // on each other's counters in opposite orders.
    std::map<std::string, std::int64_t> counted;
    std::vector<ReportRecorded> out;
    out.reserve(reports.size());
    for (const ReceivedReport& r : reports) {
      ReportRecorded recorded;
      if (c_.run("feedback_seen", pg::Params().add_bytes(r.digest).add(now)).affected() == 0) {
        recorded.duplicate = true;
        ++counted["duplicate"];
        out.push_back(std::move(recorded));
        continue;
      }
      for (const std::string& c : r.counters) ++counted[c];
      for (const Feedback& f : r.feedback) {
        recorded.applied.push_back(apply_feedback(f, r.source, policy, now));
      }
      out.push_back(std::move(recorded));
    }
    for (const auto& [name, n] : counted) {
      c_.run("feedback_count", pg::Params().add(name).add(n));
    }
    tx.commit();
    return out;
  });
}

FeedbackApplied PostgresStore::apply_feedback(const Feedback& f, const std::string& source,
                                              const FeedbackPolicy& policy, UnixMillis now) {
  FeedbackApplied a;
  a.message = f.message;
  a.kind = f.kind;
  // Locked before its state changes (feedback_lock_message); a forget or prune waits for it.
  auto m = read_message(c_.run("feedback_lock_message", pg::Params().add(f.message)));
  if (!m || !takes_reports(m->state)) return a;
  a.applied = true;
  auto [state, feedback] = message_after_report(f, *m);
  // The campaign's counts as the automatic pause judges them, before this report and after it:
  // read once a transaction, then kept up to date here (a count of the whole campaign per report
  // would cost as much as the campaign is long).
  CampaignTally* t = m->campaign.empty() ? nullptr : &tally(m->campaign);
  if (t && (!t->resumed_at || m->sent_at >= *t->resumed_at)) {
    add_feedback(t->since, m->state, m->feedback, -1);
    add_feedback(t->since, state, feedback, 1);
  }
  if (state != m->state || feedback != m->feedback) {
    c_.run("feedback_update_message",
           pg::Params().add(to_string(state)).add_or_null(feedback).add(m->id));
  }
  if (f.kind == FeedbackKind::soft_bounce) a.soft_count = count_soft_bounce(*m, policy, now);
  ReportEvent e = report_event(f, a.soft_count, policy);
  add_event(now, e.type.c_str(), m->recipient, m->id, m->category, m->campaign, source, e.detail);
  if (e.suppress) {
    Suppression s{m->recipient, "", *e.suppress, source, now};
    SuppressOutcome o = suppress_one(s, now, m->id, m->campaign);
    a.suppressed = o == SuppressOutcome::added || o == SuppressOutcome::raised;
  }
  if (t && counts_for_pause(f.kind) && !t->paused && auto_pause_reason(t->since, policy)) {
    // The tally does not see what the dispatcher committed since it was read (more messages
    // sent: more answered), so a pause is judged again on the counts now. With nobody else
    // writing, they are the tally's.
    auto found = read_campaigns(m->campaign);
    if (!found.empty()) t->since = found.front().feedback_since_resume;
    if (auto reason = auto_pause_reason(t->since, policy)) {
      pause_itself(m->campaign, *reason, now);
      t->paused = true;
      a.paused_campaign = m->campaign;
      a.pause_reason = std::move(*reason);
    }
  }
  return a;
}

int PostgresStore::count_soft_bounce(const SentMessage& m, const FeedbackPolicy& policy,
                                     UnixMillis now) {
  // Locked, with count 0 when the address has no run (feedback_soft_run).
  pg::Result found = c_.run("feedback_soft_run", pg::Params().add(m.recipient));
  std::optional<SoftBounceRun> run;
  if (found.int64(0, 0) > 0) {
    run = SoftBounceRun{static_cast<int>(found.int64(0, 0)), found.int64(0, 1), found.int64(0, 2),
                        found.int64(0, 3)};
  }
  bool delivered_between = false;
  bool counted_before = false;
  if (run) {
    delivered_between =
        c_.run("feedback_delivered_between", pg::Params()
                                                 .add(m.recipient)
                                                 .add(std::min(run->last_sent_at, m.sent_at))
                                                 .add(std::max(run->last_sent_at, m.sent_at))
                                                 .add(m.id))
            .boolean(0, 0);
    counted_before =
        c_.run("feedback_counted_before", pg::Params().add(m.recipient).add(m.id)).boolean(0, 0);
  }
  SoftBounceRun next =
      next_soft_bounce_run(run, m.id, m.sent_at, counted_before, delivered_between, now, policy);
  if (next.count >= policy.soft_limit) {
    c_.run("feedback_end_run", pg::Params().add(m.recipient));
  } else {
    c_.run("feedback_save_run", pg::Params()
                                    .add(m.recipient)
                                    .add(next.count)
                                    .add(next.first_at)
                                    .add(next.last_message)
                                    .add(next.last_sent_at));
  }
  return next.count;
}

std::optional<std::string> PostgresStore::pause_if_tripped(const std::string& campaign,
                                                           const FeedbackPolicy& policy,
                                                           UnixMillis now) {
  auto judge = [&]() -> std::optional<std::string> {
    auto found = read_campaigns(campaign);
    if (found.empty() || found.front().paused_at) return std::nullopt;
    return auto_pause_reason(found.front().feedback_since_resume, policy);
  };
  if (!judge()) return std::nullopt;
  // Judged again with the campaign locked (feedback_lock_campaign): of two daemons that find it
  // tripped at once, the second waits and then finds it paused, and a person's resume meanwhile
  // is seen. Not locked before: the daemon's check every minute (pause_tripped_campaigns) holds up
  // no report about a campaign it does not pause.
  c_.run("feedback_lock_campaign", pg::Params().add(campaign));
  auto reason = judge();
  if (reason) pause_itself(campaign, *reason, now);
  return reason;
}

void PostgresStore::pause_itself(const std::string& campaign, const std::string& reason,
                                 UnixMillis now) {
  c_.exec(
      "UPDATE campaigns SET paused_at = $1, pause_reason = $2 WHERE name = $3 AND paused_at IS "
      "NULL",
      pg::Params().add(now).add(reason).add(campaign));
  shift_campaign(campaign, true);
  count_feedback("auto-pause");
}

PostgresStore::CampaignTally& PostgresStore::tally(const std::string& campaign) {
  auto it = tallies_.find(campaign);
  if (it != tallies_.end()) return it->second;
  // Locked until the reports commit (feedback_lock_campaign): another process taking in reports
  // about the campaign waits here and then counts what this one did, and nobody pauses or resumes
  // it meanwhile, so `paused` and `resumed_at` hold to the end.
  c_.run("feedback_lock_campaign", pg::Params().add(campaign));
  CampaignTally t;
  auto found = read_campaigns(campaign);
  if (!found.empty()) {
    t.paused = found.front().paused_at.has_value();
    t.resumed_at = found.front().resumed_at;
    t.since = found.front().feedback_since_resume;
  }
  return tallies_.emplace(campaign, t).first->second;
}

std::vector<std::pair<std::string, std::int64_t>> PostgresStore::feedback_counters() {
  std::vector<std::pair<std::string, std::int64_t>> out;
  // Byte order, as SQLite sorts: the database's collation may ignore punctuation ("class:hard").
  pg::Result r = c_.exec("SELECT name, count FROM feedback_counters ORDER BY name COLLATE \"C\"");
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.string(i, 0), r.int64(i, 1));
  return out;
}

}  // namespace bulkmail
