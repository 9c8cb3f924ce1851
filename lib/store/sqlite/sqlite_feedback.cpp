// SqliteStore's side of what comes back by mail: finding the message a report names, and taking
// reports in (store.h, record_reports).
#include "store/sqlite/sqlite_feedback.h"

#include <SQLiteCpp/Transaction.h>

#include "store/sqlite/sqlite_store.h"
#include "store/sqlite/synchronous_full.h"

namespace bulkmail {

namespace {
constexpr const char* kMessageColumns =
    "SELECT id, COALESCE(campaign, ''), category, recipient, state, COALESCE(message_id, ''), "
    "updated_at, COALESCE(feedback, '') FROM messages ";

std::optional<SentMessage> read_message(SQLite::Statement& st) {
  std::optional<SentMessage> out;
  if (st.executeStep()) {
    auto state = parse_message_state(st.getColumn(4).getString());
    out = SentMessage{st.getColumn(0).getInt64(),
                      st.getColumn(1).getString(),
                      st.getColumn(2).getString(),
                      st.getColumn(3).getString(),
                      state.value_or(MessageState::cancelled),
                      st.getColumn(5).getString(),
                      st.getColumn(6).getInt64(),
                      st.getColumn(7).getString()};
  }
  st.reset();  // never leave a read snapshot open (see find_suppression)
  return out;
}

}  // namespace

SqliteFeedbackStatements::SqliteFeedbackStatements(SQLite::Database& db)
    : find_message(db, std::string(kMessageColumns) + "WHERE id = ?"),
      find_by_header(db, std::string(kMessageColumns) + "WHERE message_id = ? ORDER BY id LIMIT 1"),
      seen(db, "INSERT INTO received_reports (digest, at) VALUES (?, ?) ON CONFLICT DO NOTHING"),
      count(db,
            "INSERT INTO feedback_counters (name, count) VALUES (?, 1) ON CONFLICT (name) DO "
            "UPDATE SET count = count + 1"),
      update_message(db, "UPDATE messages SET state = ?1, feedback = ?2 WHERE id = ?3"),
      soft_run(db,
               "SELECT count, first_at, last_message, last_sent_at FROM soft_bounces WHERE "
               "address = ?"),
      // A message to the address the relay took, that no report came back about, sent between
      // the run's latest bounced message and this one: the address took mail in between.
      delivered_between(db,
                        "SELECT EXISTS (SELECT 1 FROM messages WHERE recipient = ?1 AND state = "
                        "'sent' AND feedback IS NULL AND updated_at > ?2 AND updated_at < ?3 "
                        "AND id <> ?4)"),
      save_run(db,
               "INSERT INTO soft_bounces (address, count, first_at, last_message, last_sent_at) "
               "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (address) DO UPDATE SET count = ?2, "
               "first_at = ?3, last_message = ?4, last_sent_at = ?5"),
      end_run(db, "DELETE FROM soft_bounces WHERE address = ?"),
      // Whether a soft bounce of this message was counted already (its event, by the address's
      // index).
      counted_before(db,
                     "SELECT EXISTS (SELECT 1 FROM events WHERE address = ? AND message = ? AND "
                     "type = 'soft-bounce')") {}

SqliteFeedbackStatements& SqliteStore::feedback_statements() {
  if (!fst_) fst_ = std::make_unique<SqliteFeedbackStatements>(db_);
  return *fst_;
}

std::optional<SentMessage> SqliteStore::find_message(MessageId id) {
  auto& st = feedback_statements().find_message;
  st.reset();
  st.bind(1, static_cast<int64_t>(id));
  return read_message(st);
}

std::optional<SentMessage> SqliteStore::find_message_by_header(const std::string& message_id) {
  if (message_id.empty()) return std::nullopt;
  auto& st = feedback_statements().find_by_header;
  st.reset();
  st.bind(1, message_id);
  return read_message(st);
}

std::optional<SentMessage> SqliteStore::find_message_sent_to(const std::string& address,
                                                             const std::string& category,
                                                             UnixMillis since) {
  SQLite::Statement st(db_, std::string(kMessageColumns) +
                                "WHERE recipient = ? AND category = ? AND state IN ('sent', "
                                "'bounced', 'complained') AND updated_at >= ? ORDER BY "
                                "updated_at, id LIMIT 1");
  st.bind(1, address);
  st.bind(2, category);
  st.bind(3, static_cast<int64_t>(since));
  return read_message(st);
}

void SqliteStore::count_feedback(const std::string& name) {
  auto& st = feedback_statements().count;
  st.reset();
  st.bind(1, name);
  st.exec();
}

std::vector<ReportRecorded> SqliteStore::record_reports(std::span<const ReceivedReport> reports,
                                                        const FeedbackPolicy& policy,
                                                        UnixMillis now) {
  // A complaint is an opt-out: its suppression must survive a power failure.
  SynchronousFull full(db_);
  std::vector<ReportRecorded> out;
  out.reserve(reports.size());
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  tallies_.clear();  // counted afresh in this transaction, then kept up to date report by report
  auto& seen = feedback_statements().seen;
  for (const ReceivedReport& r : reports) {
    ReportRecorded recorded;
    seen.reset();
    seen.bind(1, r.digest.data(), static_cast<int>(r.digest.size()));
    seen.bind(2, static_cast<int64_t>(now));
    if (seen.exec() == 0) {
      recorded.duplicate = true;
      count_feedback("duplicate");
      out.push_back(std::move(recorded));
      continue;
    }
    for (const std::string& c : r.counters) count_feedback(c);
    for (const Feedback& f : r.feedback) {
      recorded.applied.push_back(apply_feedback(f, r.source, policy, now));
    }
    out.push_back(std::move(recorded));
  }
  tx.commit();
  return out;
}

FeedbackApplied SqliteStore::apply_feedback(const Feedback& f, const std::string& source,
                                            const FeedbackPolicy& policy, UnixMillis now) {
  FeedbackApplied a;
  a.message = f.message;
  a.kind = f.kind;
  auto m = find_message(f.message);
  if (!m || !takes_reports(m->state)) return a;
  a.applied = true;
  auto [state, feedback] = message_after_report(f, *m);
  // The campaign's counts as the automatic pause judges them, before this report and after it: read
  // once a transaction, then kept up to date here (a count of the whole campaign per report would
  // cost as much as the campaign is long).
  CampaignTally* t = m->campaign.empty() ? nullptr : &tally(m->campaign);
  if (t && (!t->resumed_at || m->sent_at >= *t->resumed_at)) {
    add_feedback(t->since, m->state, m->feedback, -1);
    add_feedback(t->since, state, feedback, 1);
  }
  if (state != m->state || feedback != m->feedback) {
    auto& up = feedback_statements().update_message;
    up.reset();
    up.bind(1, std::string(to_string(state)));
    if (feedback.empty()) {
      up.bind(2);
    } else {
      up.bind(2, feedback);
    }
    up.bind(3, static_cast<int64_t>(m->id));
    up.exec();
  }
  if (f.kind == FeedbackKind::soft_bounce) a.soft_count = count_soft_bounce(*m, policy, now);
  ReportEvent e = report_event(f, a.soft_count, policy);
  add_event(now, e.type.c_str(), m->recipient, m->id, m->category, m->campaign, source, e.detail);
  if (e.suppress) {
    Suppression s{m->recipient, "", *e.suppress, source, now};
    SuppressOutcome o = suppress_one(s, now, m->id, m->campaign);
    a.suppressed = o == SuppressOutcome::added || o == SuppressOutcome::raised;
  }
  if (t && counts_for_pause(f.kind) && !t->paused) {
    if (auto reason = auto_pause_reason(t->since, policy)) {
      pause_itself(m->campaign, *reason, now);
      t->paused = true;
      a.paused_campaign = m->campaign;
      a.pause_reason = std::move(*reason);
    }
  }
  return a;
}

int SqliteStore::count_soft_bounce(const SentMessage& m, const FeedbackPolicy& policy,
                                   UnixMillis now) {
  auto& fs = feedback_statements();
  std::optional<SoftBounceRun> run;
  fs.soft_run.reset();
  fs.soft_run.bind(1, m.recipient);
  if (fs.soft_run.executeStep()) {
    run = SoftBounceRun{fs.soft_run.getColumn(0).getInt(), fs.soft_run.getColumn(1).getInt64(),
                        fs.soft_run.getColumn(2).getInt64(), fs.soft_run.getColumn(3).getInt64()};
  }
  fs.soft_run.reset();
  bool delivered_between = false;
  if (run) {
    auto& d = fs.delivered_between;
    d.reset();
    d.bind(1, m.recipient);
    d.bind(2, static_cast<int64_t>(std::min(run->last_sent_at, m.sent_at)));
    d.bind(3, static_cast<int64_t>(std::max(run->last_sent_at, m.sent_at)));
    d.bind(4, static_cast<int64_t>(m.id));
    d.executeStep();
    delivered_between = d.getColumn(0).getInt() != 0;
    d.reset();
  }
  bool counted_before = false;
  if (run) {
    auto& c = fs.counted_before;
    c.reset();
    c.bind(1, m.recipient);
    c.bind(2, static_cast<int64_t>(m.id));
    c.executeStep();
    counted_before = c.getColumn(0).getInt() != 0;
    c.reset();
  }
  SoftBounceRun next =
      next_soft_bounce_run(run, m.id, m.sent_at, counted_before, delivered_between, now, policy);
  if (next.count >= policy.soft_limit) {
    fs.end_run.reset();
    fs.end_run.bind(1, m.recipient);
    fs.end_run.exec();
  } else {
    auto& save = fs.save_run;
    save.reset();
    save.bind(1, m.recipient);
    save.bind(2, next.count);
    save.bind(3, static_cast<int64_t>(next.first_at));
    save.bind(4, static_cast<int64_t>(next.last_message));
    save.bind(5, static_cast<int64_t>(next.last_sent_at));
    save.exec();
  }
  return next.count;
}

std::optional<std::string> SqliteStore::pause_if_tripped(const std::string& campaign,
                                                         const FeedbackPolicy& policy,
                                                         UnixMillis now) {
  auto found = read_campaigns(campaign);
  if (found.empty() || found.front().paused_at) return std::nullopt;
  auto reason = auto_pause_reason(found.front().feedback_since_resume, policy);
  if (reason) pause_itself(campaign, *reason, now);
  return reason;
}

void SqliteStore::pause_itself(const std::string& campaign, const std::string& reason,
                               UnixMillis now) {
  SQLite::Statement mark(db_,
                         "UPDATE campaigns SET paused_at = ?, pause_reason = ? WHERE name = ? AND "
                         "paused_at IS NULL");
  mark.bind(1, static_cast<int64_t>(now));
  mark.bind(2, reason);
  mark.bind(3, campaign);
  mark.exec();
  shift_campaign(campaign, true);
  count_feedback("auto-pause");
}

SqliteStore::CampaignTally& SqliteStore::tally(const std::string& campaign) {
  auto it = tallies_.find(campaign);
  if (it != tallies_.end()) return it->second;
  CampaignTally t;
  auto found = read_campaigns(campaign);
  if (!found.empty()) {
    t.paused = found.front().paused_at.has_value();
    t.resumed_at = found.front().resumed_at;
    t.since = found.front().feedback_since_resume;
  }
  return tallies_.emplace(campaign, t).first->second;
}

std::vector<std::pair<std::string, std::int64_t>> SqliteStore::feedback_counters() {
  std::vector<std::pair<std::string, std::int64_t>> out;
  SQLite::Statement st(db_, "SELECT name, count FROM feedback_counters ORDER BY name");
  while (st.executeStep())
    out.emplace_back(st.getColumn(0).getString(), st.getColumn(1).getInt64());
  return out;
}

}  // namespace bulkmail
