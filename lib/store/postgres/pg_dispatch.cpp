// PostgresStore's dispatcher side (pg_store.h): claims, outcomes, leases, retention, forgetting and
// what the dispatcher says it is doing. The port of sqlite_store.cpp from claim_due on: the same
// results call for call, with the care several daemons on one database need.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/digest.h"
#include "store/postgres/pg_sql.h"
#include "store/postgres/pg_store.h"

namespace bulkmail {
namespace {

// One statement leases the batch. The due rows are chosen in a CTE with FOR UPDATE SKIP LOCKED:
// a row another daemon is claiming is skipped, not waited for, and one whose state changed since
// this statement began is checked again once locked, so no two daemons lease the same message. The
// CTE also fences the LIMIT off from the UPDATE, whose plan could otherwise change more rows than
// it. Each row comes with the suppression that covers its recipient, if any (all-mail first, as
// find_suppression has it), read in the claim's own snapshot: the last look before a sender.
// Handed out in id order, as SqliteStore does. Run twice by claim_due, for `states`: due retries
// first (store.h, retry_share), then whatever is due.
std::string claim_sql(const char* states) {
  return std::string("WITH due AS (SELECT id FROM messages WHERE state ") + states +
         " AND next_attempt_at <= $3 ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP "
         "LOCKED), "
         "claimed AS (UPDATE messages m SET state = 'sending', lease_owner = $1, lease_expires_at "
         "= $2, "
         "attempts = m.attempts + 1, updated_at = $3 FROM due WHERE m.id = due.id RETURNING m.id, "
         "m.campaign, m.category, m.recipient, m.vars, m.attempts, m.created_at) "
         "SELECT c.id, c.campaign, c.category, c.recipient, c.vars, c.attempts, c.created_at, "
         "s.address, s.category, s.reason, s.source, s.created_at FROM claimed c LEFT JOIN LATERAL "
         "(SELECT address, category, reason, source, created_at FROM suppressions WHERE address = "
         "c.recipient AND category IN ('', c.category) ORDER BY category LIMIT 1) s ON true "
         "ORDER BY c.id";
}

// A claimed message whose recipient turned out to be suppressed: it was never attempted.
constexpr const char* kMarkSuppressed =
    "UPDATE messages SET state = 'suppressed', last_reply = $1, updated_at = $2, "
    "lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - 1 WHERE id = $3";

// The start of a statement that holds (FOR SHARE) the campaigns of the messages a condition
// names, in name order (so that two daemons never wait for each other); the caller ends it.
constexpr const char* kHoldCampaigns =
    "SELECT name FROM campaigns WHERE name IN (SELECT campaign FROM messages WHERE ";

constexpr const char* kEvent =
    "INSERT INTO events (at, type, address, message, category, campaign, source, detail) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

// A hard bounce in one statement: the update of a message still leased, and its event ($9 type,
// $10 detail), so that a pipeline of them needs no answer in between (an outcome that finds its
// lease recovered writes no event either). $1 state, $2 reply code, $3 reply, $4 next attempt,
// $5 Message-ID, $6 now, $7 id, $8 feedback, $11 and $12 the claim it ends (Outcome::lease_owner
// and claimed_attempts; '' for any). Its first column: 1 when it was recorded.
//
// It also suppresses the address for all mail and records that when the
// suppression is new. That event reads `outcome`, so it takes the later id, as in SQLite; the
// change is announced to every daemon ($13, the channel) when the transaction commits.
std::string record_hard_sql() {
  std::string sql =
      "WITH rec AS (UPDATE messages SET state = $1::text, last_reply_code = $2, last_reply = $3, "
      "next_attempt_at = $4::bigint + CASE WHEN $1::text IN ('queued', 'deferred') THEN " +
      paused_shift("messages.campaign") +
      " ELSE 0 END, message_id = coalesce($5::text, message_id), lease_owner = NULL, "
      "lease_expires_at = NULL, updated_at = $6::bigint, attempts = CASE WHEN $1::text = "
      "'queued' THEN attempts - 1 ELSE attempts END, feedback = coalesce($8::text, feedback) "
      "WHERE id = $7 AND state = 'sending' AND ($11::text = '' OR (lease_owner = $11::text AND "
      "attempts = $12::int)) RETURNING id, recipient, category, "
      "coalesce(campaign, '') AS campaign), "
      "outcome AS (INSERT INTO events (at, type, address, message, category, campaign, source, "
      "detail) SELECT $6::bigint, $9::text, recipient, id, category, campaign, "
      "coalesce(nullif($11::text, ''), 'dispatcher'), "
      "$10::text FROM rec RETURNING id) ";
  return sql +
         ", added AS (INSERT INTO suppressions (address, category, reason, source, created_at) "
         "SELECT recipient, '', 'hard-bounce', 'smtp', $6::bigint FROM rec ON CONFLICT DO "
         "NOTHING RETURNING address), "
         "evidence AS (INSERT INTO events (at, type, address, message, category, campaign, "
         "source, detail) SELECT $6::bigint, 'suppression-added', rec.recipient, rec.id, '', "
         "rec.campaign, 'smtp', 'hard-bounce (all mail): ' || $10::text FROM rec, added, outcome "
         "RETURNING id) "
         "SELECT (SELECT count(*) FROM outcome), "
         "(SELECT count(*) FROM evidence, pg_notify($13::text, evidence.id::text))";
}

// The outcomes of a group that suppress nothing (all but hard bounces), in one statement: each
// array holds one field of every outcome, in order; the update and its event as record_sql's,
// the events taking their ids in the outcomes' order. Returns the positions (from 1) of those
// recorded. One statement instead of one per outcome: the server plans and runs it once.
constexpr const char* kRecordMany =
    "WITH o AS (SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], "
    "$5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[]) "
    "WITH ORDINALITY AS o (state, code, reply, next_at, header, id, feedback, type, detail, "
    "owner, claimed, n)), "
    "rec AS (UPDATE messages m SET state = o.state, last_reply_code = nullif(o.code, 0), "
    "last_reply = o.reply, next_attempt_at = o.next_at + CASE WHEN o.state IN ('queued', "
    "'deferred') THEN PAUSED_SHIFT ELSE 0 END, message_id = coalesce(nullif(o.header, ''), "
    "m.message_id), lease_owner = NULL, lease_expires_at = NULL, updated_at = $12::bigint, "
    "attempts = CASE WHEN o.state = 'queued' THEN m.attempts - 1 ELSE m.attempts END, "
    "feedback = coalesce(nullif(o.feedback, ''), m.feedback) FROM o WHERE m.id = o.id AND "
    "m.state = 'sending' AND (o.owner = '' OR (m.lease_owner = o.owner AND m.attempts = "
    "o.claimed)) RETURNING o.n, m.id, m.recipient, m.category, coalesce(m.campaign, '') AS "
    "campaign, o.type, o.detail, o.owner), "
    "ev AS (INSERT INTO events (at, type, address, message, category, campaign, source, detail) "
    "SELECT $12::bigint, type, recipient, id, category, campaign, coalesce(nullif(owner, ''), "
    "'dispatcher'), detail FROM rec "
    "ORDER BY n) "
    "SELECT n FROM rec";

std::string record_many_sql() {
  std::string sql = kRecordMany;
  sql.replace(sql.find("PAUSED_SHIFT"), 12, paused_shift("m.campaign"));
  return sql;
}

// One statement, one snapshot: the newest event id, then the changes up to it, read under
// kSuppressionEventsReadLock (pg_sql.h), so that no change below that id is still to commit.
constexpr const char* kSuppressionChanges =
    "SELECT coalesce(max(id), 0), 'newest', '', '', NULL, NULL, NULL FROM events "
    "UNION ALL "
    "SELECT e.id, e.type, e.address, e.category, s.reason, s.source, s.created_at "
    "FROM events e LEFT JOIN suppressions s ON s.address = e.address AND s.category = e.category "
    "WHERE e.id > $1 AND e.type IN ('suppression-added', 'suppression-removed') ORDER BY 1";

// Serializes retention between daemons (a transaction-level advisory lock: "bm-prune" in ASCII),
// so that two of them never walk from the same place and move `walked_to` over each other.
constexpr std::int64_t kPruneLock = 0x626d2d7072756e65;

// Runs the statements `queue` puts in one pipeline (one round trip) and returns their results in
// order. The pipeline is closed before the caller's next statement, which pipeline mode refuses.
std::vector<pg::Result> pipelined(pg::Connection& c,
                                  const std::function<void(pg::Pipeline&)>& queue) {
  pg::Pipeline p(c);
  queue(p);
  return p.results();
}

pg::Params event_params(UnixMillis at, const char* type, const std::string& address,
                        MessageId message, const std::string& category, const std::string& campaign,
                        const std::string& source, const std::string& detail) {
  pg::Params p;
  p.add(at).add(type).add(address).add(message).add(category).add(campaign).add(source);
  p.add(detail);
  return p;
}

std::vector<std::string> text_list(std::span<const std::string_view> names) {
  return std::vector<std::string>(names.begin(), names.end());
}

// The states retention may delete (is_finished), as a text[] parameter.
std::vector<std::string> finished_states() {
  std::vector<std::string> out;
  for (MessageState s : kAllMessageStates) {
    if (is_finished(s)) out.emplace_back(to_string(s));
  }
  return out;
}

}  // namespace

void PostgresStore::prepare_dispatch_statements() {
  c_.prepare("dispatch_claim", claim_sql("IN ('queued', 'deferred')"));
  c_.prepare("dispatch_claim_retries", claim_sql("= 'deferred'"));
  c_.prepare("dispatch_mark_suppressed", kMarkSuppressed);
  c_.prepare("dispatch_event", kEvent);
  c_.prepare("dispatch_record_hard", record_hard_sql());
  c_.prepare("dispatch_record_many", record_many_sql());
}

std::vector<ClaimedMessage> PostgresStore::claim_due(const std::string& owner, std::size_t limit,
                                                     UnixMillis now, UnixMillis lease_until) {
  std::vector<ClaimedMessage> claimed;
  std::vector<std::pair<ClaimedMessage, std::string>> suppressed;  // and why
  std::size_t leased = 0;
  pg::Transaction tx(c_);
  auto lease = [&](const char* statement, std::size_t n) {
    pg::Result r =
        c_.run(statement,
               pg::Params().add(owner).add(lease_until).add(now).add(static_cast<std::int64_t>(n)));
    leased += static_cast<std::size_t>(r.rows());
    for (int row = 0; row < r.rows(); ++row) {
      ClaimedMessage m;
      m.id = r.int64(row, 0);
      m.campaign = r.string_or_empty(row, 1);
      m.category = r.string(row, 2);
      m.recipient = r.string(row, 3);
      m.vars_json = r.string(row, 4);
      m.attempts = static_cast<int>(r.int64(row, 5));
      m.created_at = r.int64(row, 6);
      m.lease_owner = owner;
      // The opt-out check that matters: made in the claim itself, the last moment before the
      // message is handed to a sender, so a suppression committed while the message waited
      // always wins. (The senders' SuppressionWatch covers the time between the claim and the
      // delivery.)
      if (!r.is_null(row, 7)) {
        Suppression s = pgsql::read_suppression(r, row, 7);
        suppressed.emplace_back(std::move(m),
                                "recipient suppressed (" + suppression_summary(s) + ")");
        continue;
      }
      claimed.push_back(std::move(m));
    }
  };
  // Due retries first, up to their share; then whatever is due, oldest due first.
  lease("dispatch_claim_retries", retry_share(limit));
  lease("dispatch_claim", limit - leased);
  std::sort(claimed.begin(), claimed.end(),
            [](const ClaimedMessage& a, const ClaimedMessage& b) { return a.id < b.id; });
  if (!suppressed.empty()) {
    pipelined(c_, [&](pg::Pipeline& p) {
      for (const auto& [m, why] : suppressed) {
        p.run("dispatch_mark_suppressed", pg::Params().add(why).add(now).add(m.id));
        p.run("dispatch_event", event_params(now, "suppressed", m.recipient, m.id, m.category,
                                             m.campaign, owner, why));
      }
    });
  }
  tx.commit();
  return claimed;
}

namespace {

// An outcome's event detail: the relay's reply line, which starts with its code already ("250
// 2.0.0 Ok"); the code added when not.
std::string outcome_detail(const Outcome& o) {
  std::string code = o.reply_code ? std::to_string(o.reply_code) : "";
  return o.reply.rfind(code, 0) == 0 ? o.reply : code + " " + o.reply;
}

// dispatch_record_hard's parameters (record_hard_sql) for one hard bounce.
pg::Params hard_bounce_params(const Outcome& o, UnixMillis now) {
  std::string state(to_string(o.state));
  pg::Params params;
  params.add(state);
  if (o.reply_code) {
    params.add(o.reply_code);
  } else {
    params.add_null();
  }
  params.add(o.reply).add(o.next_attempt_at ? o.next_attempt_at : now);
  params.add_or_null(o.message_id_header).add(now).add(o.id);
  params.add_or_null(feedback_name(o.bounce_class));
  params.add(o.state == MessageState::queued ? "released" : state).add(outcome_detail(o));
  params.add(o.lease_owner).add(o.claimed_attempts);  // the claim it ends
  params.add(pgsql::kSuppressionChannel);
  return params;
}

// kRecordMany's arrays, one field of every outcome each.
struct Columns {
  std::vector<std::string> state, reply, header, feedback, type, detail, owner;
  std::vector<std::int64_t> code, next_at, id, claimed;
  std::vector<std::size_t> index;  // each one's position among the outcomes

  void add(const Outcome& o, UnixMillis now, std::string detail_text, std::size_t i) {
    state.emplace_back(to_string(o.state));
    type.push_back(o.state == MessageState::queued ? "released" : state.back());
    code.push_back(o.reply_code);
    reply.push_back(o.reply);
    next_at.push_back(o.next_attempt_at ? o.next_attempt_at : now);
    header.push_back(o.message_id_header);
    id.push_back(o.id);
    feedback.push_back(feedback_name(o.bounce_class));
    detail.push_back(std::move(detail_text));
    owner.push_back(o.lease_owner);
    claimed.push_back(o.claimed_attempts);
    index.push_back(i);
  }
  pg::Params params(UnixMillis now) const {
    pg::Params p;
    p.add_array(state).add_array(code).add_array(reply).add_array(next_at).add_array(header);
    p.add_array(id).add_array(feedback).add_array(type).add_array(detail).add_array(owner);
    p.add_array(claimed).add(now);
    return p;
  }
};

}  // namespace

void PostgresStore::lock_for_outcomes(std::span<const Outcome> outcomes) {
  // A message put back to wait (deferred, released) is due after kPausedOffset while its campaign
  // is paused, decided from the campaign row: held FOR SHARE, so that a pause or resume committing
  // meanwhile waits for this transaction and then moves these messages too (it moves the waiting
  // ones it sees; without the lock it would miss these, still `sending` in its snapshot, and a
  // resumed campaign would keep a message due in the year 36 million).
  std::vector<std::int64_t> waiting;
  for (const Outcome& o : outcomes) {
    if (o.state == MessageState::queued || o.state == MessageState::deferred) {
      waiting.push_back(o.id);
    }
  }
  if (!waiting.empty()) {
    c_.exec(std::string(kHoldCampaigns) + "id = ANY($1::bigint[])) ORDER BY name FOR SHARE",
            pg::Params().add_array(waiting));
  }
  // A hard bounce writes a suppression-added event in its statement: the lock comes first.
  if (std::any_of(outcomes.begin(), outcomes.end(),
                  [](const Outcome& o) { return o.bounce_class == BounceClass::hard; })) {
    c_.exec(pgsql::kSuppressionEventsLock);
  }
}

std::vector<CampaignPaused> PostgresStore::record_outcomes(std::span<const Outcome> outcomes,
                                                           UnixMillis now) {
  if (outcomes.empty()) return {};
  // Most groups are all delivered (or failed, or suppressed): nothing to lock, suppress or pause.
  // Their one statement goes alone in a pipeline, which is a transaction of its own (the
  // statements before a sync commit together): one round trip, no BEGIN and COMMIT around it.
  if (std::none_of(outcomes.begin(), outcomes.end(), [](const Outcome& o) {
        return o.state == MessageState::queued || o.state == MessageState::deferred ||
               o.bounce_class == BounceClass::hard || o.bounce_class == BounceClass::policy;
      })) {
    Columns all;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      all.add(outcomes[i], now, outcome_detail(outcomes[i]), i);
    }
    pipelined(c_, [&](pg::Pipeline& p) { p.run("dispatch_record_many", all.params(now)); });
    return {};
  }
  pg::Transaction tx(c_);
  lock_for_outcomes(outcomes);
  // The group commit in one round trip: the outcomes that suppress nothing in one statement
  // (kRecordMany), each hard bounce in one of its own (its update, its event, the suppression),
  // all pipelined, so none waits for the answer to the one before.
  std::vector<bool> recorded(outcomes.size(), false);
  std::vector<std::size_t> hard;  // positions in `outcomes` of the hard bounces
  Columns many;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    if (o.bounce_class == BounceClass::hard) {
      hard.push_back(i);
      continue;
    }
    many.add(o, now, outcome_detail(o), i);
  }
  std::vector<pg::Result> results = pipelined(c_, [&](pg::Pipeline& p) {
    if (!many.index.empty()) p.run("dispatch_record_many", many.params(now));
    for (std::size_t i : hard) p.run("dispatch_record_hard", hard_bounce_params(outcomes[i], now));
  });
  // Those not recorded: their lease was recovered meanwhile, another claim holds them.
  std::size_t next = 0;
  if (!many.index.empty()) {
    const pg::Result& r = results[next++];
    for (int row = 0; row < r.rows(); ++row) {
      recorded[many.index[static_cast<std::size_t>(r.int64(row, 0) - 1)]] = true;
    }
  }
  for (std::size_t i : hard) recorded[i] = results[next++].int64(0, 0) > 0;
  std::vector<MessageId> refused;  // hard bounces and blocks: they may trip a campaign's pause
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    if (recorded[i] &&
        (o.bounce_class == BounceClass::hard || o.bounce_class == BounceClass::policy)) {
      refused.push_back(o.id);
    }
  }
  std::vector<CampaignPaused> paused = pause_refused(refused, now);
  tx.commit();
  return paused;
}

std::vector<CampaignPaused> PostgresStore::pause_refused(std::span<const MessageId> refused,
                                                         UnixMillis now) {
  std::vector<CampaignPaused> paused;
  if (!feedback_policy_ || refused.empty()) return paused;
  // The campaigns in the order their first refusal came, read in one statement inside this
  // transaction (find_message is a public call, with a transaction of its own).
  pg::Result r = c_.exec(
      "SELECT m.campaign FROM unnest($1::bigint[]) WITH ORDINALITY AS r (id, n) JOIN messages m "
      "ON m.id = r.id WHERE m.campaign <> '' ORDER BY r.n",
      pg::Params().add_array(std::vector<std::int64_t>(refused.begin(), refused.end())));
  std::vector<std::string> campaigns;
  for (int row = 0; row < r.rows(); ++row) {
    std::string c = r.string(row, 0);
    if (std::find(campaigns.begin(), campaigns.end(), c) == campaigns.end()) {
      campaigns.push_back(std::move(c));
    }
  }
  for (const std::string& c : campaigns) {
    if (auto reason = pause_if_tripped(c, *feedback_policy_, now)) {
      paused.push_back({c, std::move(*reason)});
    }
  }
  return paused;
}

std::vector<CampaignPaused> PostgresStore::pause_tripped_campaigns(UnixMillis now) {
  std::vector<CampaignPaused> paused;
  if (!feedback_policy_) return paused;
  pg::Transaction tx(c_);
  // Every daemon calls this once a minute: the rows are locked, and one another daemon is judging
  // is skipped, so that a campaign pauses itself (and is reported) once. In SQLite's order: by
  // name, byte by byte (COLLATE "C", not the database's locale).
  pg::Result r = c_.exec(
      "SELECT name FROM campaigns c WHERE paused_at IS NULL AND EXISTS (SELECT 1 FROM messages "
      "WHERE campaign = c.name AND state IN ('queued', 'deferred')) ORDER BY name COLLATE \"C\" "
      "FOR UPDATE OF c SKIP LOCKED");
  for (int row = 0; row < r.rows(); ++row) {
    std::string c = r.string(row, 0);
    if (auto reason = pause_if_tripped(c, *feedback_policy_, now)) {
      paused.push_back({c, std::move(*reason)});
    }
  }
  tx.commit();
  return paused;
}

RecoveredLeases PostgresStore::recover_leases(
    UnixMillis expired_by, UnixMillis now, const std::optional<std::vector<MessageId>>& started) {
  pg::Transaction tx(c_);
  // The campaigns of the messages going back to the queue, held as record_outcomes holds them.
  c_.exec(std::string(kHoldCampaigns) +
              "state = 'sending' AND lease_expires_at <= $1) ORDER BY "
              "name FOR SHARE",
          pg::Params().add(expired_by));
  // Only leases that ended, locked first: a message whose sender is recording it right now, or
  // that another daemon is taking back, is skipped, so no message is counted twice. A message
  // that was never tried gets its attempt back in the same statement ($3: those that may have
  // begun; NULL, every one).
  pg::Params params;
  params.add(now).add(expired_by);
  if (started) {
    params.add_array(*started);
  } else {
    params.add_null();
  }
  pg::Result r = c_.exec(
      "WITH expired AS (SELECT id, lease_owner FROM messages WHERE state = 'sending' AND "
      "lease_expires_at <= $2 FOR UPDATE SKIP LOCKED) "
      "UPDATE messages m SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, "
      "updated_at = $1, next_attempt_at = m.next_attempt_at + CASE WHEN "
      "m.next_attempt_at < " +
          std::to_string(kPausedOffset) + " THEN " + paused_shift("m.campaign") +
          " ELSE 0 END, attempts = CASE WHEN $3::bigint[] IS NULL OR m.id = ANY($3::bigint[]) "
          "THEN m.attempts ELSE greatest(m.attempts - 1, 0) END FROM expired WHERE m.id = "
          "expired.id RETURNING m.id, m.recipient, m.category, coalesce(m.campaign, ''), "
          "coalesce(expired.lease_owner, '')",
      params);
  // RETURNING follows no particular order: by id, as SQLite's come.
  std::vector<int> rows(static_cast<std::size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) rows[static_cast<std::size_t>(row)] = row;
  std::sort(rows.begin(), rows.end(), [&](int a, int b) { return r.int64(a, 0) < r.int64(b, 0); });
  RecoveredLeases out;
  if (!rows.empty()) {
    pipelined(c_, [&](pg::Pipeline& p) {
      for (int row : rows) {
        MessageId id = r.int64(row, 0);
        std::string address = r.string(row, 1), category = r.string(row, 2);
        std::string campaign = r.string(row, 3);
        bool may_have_started =
            !started || std::find(started->begin(), started->end(), id) != started->end();
        if (may_have_started) {
          out.possible_duplicates.push_back(id);
          out.owners.push_back(r.string(row, 4));
          p.run("dispatch_event",
                event_params(now, "lease-expired", address, id, category, campaign, "recovery",
                             lease_expired_detail(r.string(row, 4))));
        } else {
          ++out.never_tried;
          p.run("dispatch_event",
                event_params(now, "released", address, id, category, campaign, "recovery",
                             "claimed but not yet tried when the last daemon stopped: queued "
                             "again"));
        }
      }
    });
  }
  tx.commit();
  return out;
}

// No transaction of its own: the other files call it inside theirs (a BEGIN there would be
// ignored, and its COMMIT would end the caller's transaction early).
std::string PostgresStore::forgotten_key(const std::string& address) {
  if (!forget_mac_) {
    pg::Result r = c_.exec("SELECT value FROM meta WHERE key = 'forget_salt'");
    if (r.empty()) throw std::runtime_error("the database has no forget_salt");
    forget_mac_ = std::make_unique<HmacSha256>(r.bytes(0, 0));
  }
  auto mac = forget_mac_->mac(address);
  return std::string(kForgottenKeyPrefix) +
         hex_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

ForgetResult PostgresStore::forget(const std::string& address, const std::string& source,
                                   UnixMillis now) {
  ForgetResult r;
  r.key = forgotten_key(address);
  // Unlike SQLite's secure_delete, nothing is overwritten first: an UPDATE writes a new row
  // version and leaves the old one where it was, so it would gain nothing. The deleted rows stay
  // in the table's files until VACUUM (autovacuum) reclaims their space, and in the write-ahead
  // log's segments until they are recycled; there is no log to empty here (log_emptied: false).
  pg::Transaction tx(c_);
  // The address's lock (pg_store.cpp, kLockAddress), which an opt-out holds while it decides
  // whether the address was forgotten: a forget and an opt-out of one address go one at a time.
  c_.run("store_lock_address", pg::Params().add(address));
  // The suppressions move under the key in one statement, one snapshot: a suppression committed
  // meanwhile is either moved or left where it is, never deleted unseen (then its evidence is
  // kept, the schema's trigger refuses this forget, and the caller may try again). Meeting one kept
  // there by an earlier forget, the stronger reason and the older time stay. Then no suppression
  // names the address, and its evidence may go.
  pg::Result moved = c_.exec(
      "WITH dropped AS (DELETE FROM suppressions WHERE address = $2 RETURNING category, reason, "
      "source, created_at), kept AS (INSERT INTO suppressions (address, category, reason, source, "
      "created_at) SELECT $1, category, reason, source, created_at FROM dropped " +
          keep_stronger_suppression_sql() + ") SELECT count(*) FROM dropped",
      pg::Params().add(r.key).add(address));
  // Counted from what was deleted, not read before: a message another daemon claimed meanwhile
  // is waited for, and counted as in flight.
  pg::Result messages = c_.exec(
      "WITH gone AS (DELETE FROM messages WHERE recipient = $1 RETURNING state) "
      "SELECT count(*), count(*) FILTER (WHERE state = 'sending') FROM gone",
      pg::Params().add(address));
  r.messages = messages.int64(0, 0);
  r.in_flight = messages.int64(0, 1);
  r.events = c_.exec("DELETE FROM events WHERE address = $1", pg::Params().add(address)).affected();
  c_.exec("DELETE FROM soft_bounces WHERE address = $1", pg::Params().add(address));
  pg::Result kept = c_.exec(
      "SELECT address, category, reason, source, created_at FROM suppressions WHERE address = $1 "
      "ORDER BY category COLLATE \"C\"",
      pg::Params().add(r.key));
  for (int row = 0; row < kept.rows(); ++row) {
    r.suppressions.push_back(pgsql::read_suppression(kept, row));
  }
  if (r.messages > 0 || r.events > 0 || moved.int64(0, 0) > 0) {  // nothing stored: no record
    auto count = [](std::int64_t n, const char* what) {
      return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
    };
    add_event(now, "forgotten", r.key, std::nullopt, "", "", source,
              "erased " + count(r.messages, "message") + " and " + count(r.events, "event") + "; " +
                  count(static_cast<std::int64_t>(r.suppressions.size()), "suppression") +
                  " kept under this key");
  }
  tx.commit();
  r.log_emptied = false;
  return r;
}

namespace {

// Where retention's walk through a table stands, kept in `meta` between calls (0 when absent):
// meta.value is bytea here, so the id is kept as the bytes of its decimal text.
std::int64_t walked_to(pg::Connection& c, const char* key) {
  pg::Result r = c.exec("SELECT convert_from(value, 'UTF8')::bigint FROM meta WHERE key = $1",
                        pg::Params().add(key));
  return r.empty() ? 0 : r.int64(0, 0);
}

void set_walked_to(pg::Connection& c, const char* key, std::int64_t id) {
  c.exec(
      "INSERT INTO meta (key, value) VALUES ($1, convert_to($2::text, 'UTF8')) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      pg::Params().add(key).add(id));
}

// One step of a walk in id order through a table: looks at up to `scan` rows after `from`, whose
// time column (created_at, at) says when to stop, and collects at most `limit` ids `doomed` says
// may go. Returns the last id looked at and whether the walk reached the cutoff (or the end).
struct Walk {
  std::vector<std::int64_t> doomed;
  std::int64_t last = 0;
  bool reached_end = true;
};
Walk walk(pg::Connection& c, const char* select, std::int64_t from, UnixMillis before,
          std::size_t limit, std::size_t scan,
          const std::function<bool(const pg::Result&, int)>& doomed) {
  Walk w;
  w.last = from;
  pg::Result r = c.exec(select, pg::Params().add(from).add(static_cast<std::int64_t>(scan)));
  std::size_t seen = 0;
  for (int row = 0; row < r.rows(); ++row) {
    ++seen;
    if (r.int64(row, 1) >= before) return w;  // ids follow time: nothing later is due
    w.last = r.int64(row, 0);
    if (doomed(r, row)) w.doomed.push_back(w.last);
    if (w.doomed.size() >= limit) break;
  }
  w.reached_end = seen < scan && w.doomed.size() < limit;
  return w;
}

}  // namespace

PruneResult PostgresStore::prune(std::optional<UnixMillis> messages_before,
                                 std::optional<UnixMillis> events_before, std::size_t limit) {
  PruneResult r;
  const std::size_t scan = limit * 10;  // rows looked at per call, kept or not
  pg::Transaction tx(c_);
  c_.exec("SELECT pg_advisory_xact_lock($1)", pg::Params().add(kPruneLock));
  if (messages_before) {
    // Finished messages, by id. A message still waiting, or finished only lately, is stepped over;
    // a walk that reaches the cutoff starts again from the first message next time, since what
    // it stepped over may be due by then.
    Walk w = walk(c_,
                  "SELECT id, created_at, state, updated_at FROM messages WHERE id > $1 ORDER BY "
                  "id LIMIT $2",
                  walked_to(c_, "messages_walked_to"), *messages_before, limit, scan,
                  [&](const pg::Result& rows, int row) {
                    auto state = parse_message_state(rows.text(row, 2));
                    return state && is_finished(*state) && rows.int64(row, 3) < *messages_before;
                  });
    if (!w.doomed.empty()) {
      // Checked again as it is deleted: unlike SQLite's, this transaction does not keep other
      // writers out, and a failed message an operator retried meanwhile is waiting again.
      r.messages =
          c_.exec(
                "DELETE FROM messages WHERE id = ANY($1) AND state = ANY($2) AND "
                "updated_at < $3",
                pg::Params().add_array(w.doomed).add_array(finished_states()).add(*messages_before))
              .affected();
    }
    set_walked_to(c_, "messages_walked_to", w.reached_end ? 0 : w.last);
    r.more = r.more || !w.reached_end;
  }
  if (events_before) {
    // Events, by id (events are written in time order, give or take the moment between a
    // daemon's insert and its commit), stepping over the evidence of suppressions: the walk never
    // comes back, so each event is looked at once.
    Walk w = walk(c_, "SELECT id, at, type FROM events WHERE id > $1 ORDER BY id LIMIT $2",
                  walked_to(c_, "events_walked_to"), *events_before, limit, scan,
                  [](const pg::Result& rows, int row) {
                    return !is_suppression_evidence(rows.text(row, 2));
                  });
    if (!w.doomed.empty()) {
      r.events = c_.exec("DELETE FROM events WHERE id = ANY($1)", pg::Params().add_array(w.doomed))
                     .affected();
    }
    set_walked_to(c_, "events_walked_to", w.last);
    r.more = r.more || !w.reached_end;
    // The evidence of suppressions no longer in force, which the schema's trigger lets go: found
    // from the lifts (events_lifted), so that a call reads what was lifted, not every
    // suppression's evidence. The lifts themselves go last: a call cut short leaves them to find
    // the rest by.
    if (static_cast<std::size_t>(r.events) < limit) {
      r.events +=
          c_.exec(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events r JOIN events e ON "
                "e.address = r.address WHERE r.type = 'suppression-removed' AND r.at < $1 AND "
                "e.type = ANY($3) AND e.at < $1 AND NOT EXISTS (SELECT 1 FROM suppressions s "
                "WHERE s.address = e.address) ORDER BY e.type = 'suppression-removed' LIMIT $2)",
                pg::Params()
                    .add(*events_before)
                    .add(static_cast<std::int64_t>(limit - static_cast<std::size_t>(r.events)))
                    .add_array(text_list(kSuppressionEvidenceEvents)))
              .affected();
      if (static_cast<std::size_t>(r.events) >= limit) r.more = true;
    }
    // The digests of reports taken in (what makes a second delivery count once) live as long as
    // the events they caused.
    std::int64_t reports =
        c_.exec(
              "DELETE FROM received_reports WHERE digest IN (SELECT digest FROM "
              "received_reports WHERE at < $1 ORDER BY at LIMIT $2)",
              pg::Params().add(*events_before).add(static_cast<std::int64_t>(limit)))
            .affected();
    if (static_cast<std::size_t>(reports) >= limit) r.more = true;
  }
  tx.commit();
  return r;
}

std::int64_t PostgresStore::renew_leases(const std::string& owner, UnixMillis now,
                                         UnixMillis lease_until) {
  // One statement; a lease another daemon rescued meanwhile (state no longer sending, or another
  // owner) is not this daemon's to extend. The daemon's heartbeat beside it.
  pg::Result r = c_.exec(
      "WITH beat AS (UPDATE daemons SET seen_at = $3 WHERE owner = $2) "
      "UPDATE messages SET lease_expires_at = $1 WHERE state = 'sending' AND lease_owner = $2 "
      "AND lease_expires_at < $4",
      pg::Params().add(lease_until).add(owner).add(now).add(now + 2 * (lease_until - now) / 3));
  return r.affected();
}

std::int64_t PostgresStore::count_sent_since(UnixMillis since) {
  pg::Transaction tx(c_);
  pg::Result r = c_.exec(
      "SELECT count(*) FROM messages WHERE state IN ('sent', 'bounced', 'complained') AND "
      "updated_at >= $1",
      pg::Params().add(since));
  tx.commit();
  return r.int64(0, 0);
}

std::int64_t PostgresStore::last_event_id() {
  pg::Transaction tx(c_);
  c_.exec(pgsql::kSuppressionEventsReadLock);  // where a watch starts: see the lock's comment
  pg::Result r = c_.exec("SELECT coalesce(max(id), 0) FROM events");
  tx.commit();
  return r.int64(0, 0);
}

SuppressionChanges PostgresStore::suppression_changes(std::int64_t after) {
  pg::Transaction tx(c_);
  c_.exec(pgsql::kSuppressionEventsReadLock);  // every change below the newest id has committed
  // Planned for this `after` each time, not prepared: a prepared statement's generic plan cannot
  // tell that `id > $1` names the last few events, and scans the whole log (5 ms a call at 40,000
  // events, and the daemon calls it after every write).
  pg::Result r = c_.exec(kSuppressionChanges, pg::Params().add(after));
  tx.commit();
  SuppressionChanges out;
  out.last = after;
  for (int row = 0; row < r.rows(); ++row) {
    if (r.text(row, 1) == "newest") {  // in the same snapshot as the changes
      out.last = std::max(after, r.int64(row, 0));
      continue;
    }
    SuppressionChange c;
    c.added = r.text(row, 1) == "suppression-added";
    c.suppression.address = r.string(row, 2);
    c.suppression.category = r.string(row, 3);
    if (!r.is_null(row, 4)) {
      c.suppression.reason =
          parse_suppression_reason(r.text(row, 4)).value_or(SuppressionReason::manual);
      c.suppression.source = r.string(row, 5);
      c.suppression.created_at = r.int64(row, 6);
    }
    out.changes.push_back(std::move(c));
  }
  return out;
}

void PostgresStore::set_dispatch_state(const DispatchState& state) {
  pg::Transaction tx(c_);
  c_.exec(
      "INSERT INTO dispatch_state (id, state, detail, updated_at) VALUES (1, $1, $2, $3) "
      "ON CONFLICT (id) DO UPDATE SET state = excluded.state, detail = excluded.detail, "
      "updated_at = excluded.updated_at",
      pg::Params().add(state.state).add(state.detail).add(state.updated_at));
  if (!state.daemon.empty()) {
    // The daemon's own row; those not seen for a day (stopped, or dead, long ago) go.
    c_.exec(
        "INSERT INTO daemons (owner, state, detail, since, seen_at) VALUES ($1, $2, $3, $4, $4) "
        "ON CONFLICT (owner) DO UPDATE SET state = excluded.state, detail = excluded.detail, "
        "since = excluded.since, seen_at = excluded.seen_at",
        pg::Params().add(state.daemon).add(state.state).add(state.detail).add(state.updated_at));
    c_.exec("DELETE FROM daemons WHERE seen_at < $1",
            pg::Params().add(state.updated_at - 86'400'000));
  }
  tx.commit();
}

std::vector<DaemonState> PostgresStore::daemons() {
  pg::Result r = c_.exec("SELECT owner, state, detail, since, seen_at FROM daemons ORDER BY owner");
  std::vector<DaemonState> out;
  for (int row = 0; row < r.rows(); ++row) {
    out.push_back(
        {r.string(row, 0), r.string(row, 1), r.string(row, 2), r.int64(row, 3), r.int64(row, 4)});
  }
  return out;
}

void PostgresStore::set_config_problem(const std::string& problem) {
  pg::Transaction tx(c_);
  c_.exec("UPDATE dispatch_state SET config_problem = $1 WHERE id = 1", pg::Params().add(problem));
  tx.commit();
}

std::optional<DispatchState> PostgresStore::dispatch_state() {
  pg::Transaction tx(c_);
  pg::Result r =
      c_.exec("SELECT state, detail, updated_at, config_problem FROM dispatch_state WHERE id = 1");
  tx.commit();
  if (r.empty()) return std::nullopt;
  return DispatchState{r.string(0, 0), r.string(0, 1), r.int64(0, 2), r.string(0, 3)};
}

}  // namespace bulkmail
