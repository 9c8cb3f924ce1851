#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <SQLiteCpp/Transaction.h>

#include "base/unique_fd.h"
#include "crypto/digest.h"
#include "store/paused_shift.h"
#include "store/sqlite/sqlite_busy.h"
#include "store/sqlite/sqlite_feedback.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/synchronous_full.h"

namespace bulkmail {
namespace {

constexpr int kBusyTimeoutMs = 10000;

// The queue holds every recipient's address and the event log, so its file is the owner's alone:
// created 0600 here, before SQLite opens it, whichever program comes first. SQLite gives the
// -wal and -shm files it creates beside it the same mode. An existing file is left as it is.
const std::string& created_private(const std::string& path) {
  bool special = path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0;
  if (!special) {
    // Closed again at once: creating the file was the point. If the open fails, the file exists,
    // or SQLite says why it cannot be opened.
    UniqueFd created(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  }
  return path;
}

// The path of a database that must already exist, or an error that says what to do.
const std::string& existing_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw std::runtime_error(
        "no database here (" + (ec ? ec.message() : std::string("no such file")) +
        "); check `database:` in the config (a relative path is relative to the config file), "
        "or create it with `bulkmaild --check`");
  }
  return path;
}

void bind_optional_text(SQLite::Statement& st, int index, const std::string& value) {
  if (value.empty()) {
    st.bind(index);  // NULL
  } else {
    st.bind(index, value);
  }
}

std::string text_or_empty(const SQLite::Column& c) {
  return c.isNull() ? std::string() : c.getString();
}

Suppression read_suppression(SQLite::Statement& st) {
  Suppression s;
  s.address = st.getColumn(0).getString();
  s.category = st.getColumn(1).getString();
  s.reason =
      parse_suppression_reason(st.getColumn(2).getString()).value_or(SuppressionReason::manual);
  s.source = st.getColumn(3).getString();
  s.created_at = st.getColumn(4).getInt64();
  return s;
}

// Stores `s`, created_at included, through the prepared insert_suppression statement, unless a
// suppression of its address and category exists. True when it was stored.
bool insert_suppression(SQLite::Statement& insert, const Suppression& s) {
  insert.reset();
  insert.bind(1, s.address);
  insert.bind(2, s.category);
  insert.bind(3, std::string(to_string(s.reason)));
  insert.bind(4, s.source);
  insert.bind(5, static_cast<int64_t>(s.created_at));
  return insert.exec() > 0;
}

// `names` as an SQL list of string literals: ('a', 'b').
std::string sql_text_list(std::span<const std::string_view> names) {
  std::string out = "(";
  for (std::string_view name : names) {
    if (out.size() > 1) out += ", ";
    out += '\'';
    for (char c : name) {
      if (c == '\'') out += '\'';  // doubled, as SQL quotes it
      out += c;
    }
    out += '\'';
  }
  out += ')';
  return out;
}

}  // namespace

// One statement leases the whole batch: the due messages, oldest due first. Each row also says
// whether a suppression may cover its recipient. (In RETURNING, SQLite 3.40 looks the address up
// by the suppressions' primary key only when the column is written as an expression, `+recipient`;
// written plainly it scans every suppression for every row. A test checks the query plan.)
namespace {

// The claim, for the due messages of `states`: ?1 owner, ?2 lease end, ?3 now, ?4 limit.
std::string sqlite_claim(const char* states) {
  return std::string(
             "UPDATE messages SET state = 'sending', lease_owner = ?1, lease_expires_at = ?2, "
             "attempts = attempts + 1, updated_at = ?3 WHERE id IN (SELECT id FROM messages "
             "WHERE state ") +
         states +
         " AND next_attempt_at <= ?3 ORDER BY next_attempt_at, id LIMIT ?4) "
         "RETURNING id, campaign, category, recipient, vars, attempts, created_at, "
         "EXISTS (SELECT 1 FROM suppressions s WHERE s.address = +messages.recipient AND "
         "s.category IN ('', +messages.category))";
}

}  // namespace

std::string sqlite_claim_retries_sql() { return sqlite_claim("= 'deferred'"); }
std::string sqlite_claim_sql() { return sqlite_claim("IN ('queued','deferred')"); }

// Prepared once per connection and reused: the hot paths (enqueue, claim, record) run these for
// every message.
struct SqliteStore::Statements {
  explicit Statements(SQLite::Database& db)
      : insert_message(
            db,
            "INSERT INTO messages (campaign, category, recipient, vars, state, "
            "next_attempt_at, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6 + " +
                paused_shift("?1") + ", ?7, ?8) ON CONFLICT (campaign, recipient) DO NOTHING"),
        insert_event(db,
                     "INSERT INTO events (at, type, address, message, category, campaign, source, "
                     "detail) VALUES (?,?,?,?,?,?,?,?)"),
        find_suppression(db,
                         "SELECT address, category, reason, source, created_at FROM suppressions "
                         "WHERE address = ? AND category IN ('', ?) ORDER BY category LIMIT 1"),
        insert_suppression(db,
                           "INSERT INTO suppressions (address, category, reason, source, "
                           "created_at) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING"),
        insert_campaign(db,
                        "INSERT INTO campaigns (name, origin, created_at) VALUES (?,?,?) "
                        "ON CONFLICT DO NOTHING"),
        claim(db, sqlite_claim_sql()),
        claim_retries(db, sqlite_claim_retries_sql()),
        // A claimed message whose recipient turned out to be suppressed: it was never attempted.
        mark_suppressed(db,
                        "UPDATE messages SET state = 'suppressed', last_reply = ?, updated_at = ?, "
                        "lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - 1 "
                        "WHERE id = ?"),
        record(db,
               "UPDATE messages SET state = ?1, last_reply_code = ?2, last_reply = ?3, "
               "next_attempt_at = ?4 + CASE WHEN ?1 IN ('queued', 'deferred') THEN " +
                   paused_shift("messages.campaign") +
                   " ELSE 0 END, message_id = COALESCE(?5, message_id), lease_owner = NULL, "
                   "lease_expires_at = NULL, updated_at = ?6, "
                   "attempts = CASE WHEN ?1 = 'queued' THEN attempts - 1 ELSE attempts END, "
                   "feedback = COALESCE(?8, feedback) WHERE id = ?7 AND state = 'sending' AND "
                   "(?9 = '' OR (lease_owner = ?9 AND attempts = ?10))"),
        // The outcome's event, its address and names read from the row the UPDATE just wrote
        // (cheaper than UPDATE ... RETURNING, which buffers its rows in a temporary table).
        record_event(db,
                     "INSERT INTO events (at, type, address, message, category, campaign, source, "
                     "detail) SELECT ?1, ?2, recipient, id, category, COALESCE(campaign, ''), "
                     "?5, ?3 FROM messages WHERE id = ?4"),
        suppression_changes(
            db,
            // One statement, one snapshot: the newest event id, then the changes up to it.
            "SELECT coalesce(max(id), 0), 'newest', '', '', NULL, NULL, NULL FROM events "
            "UNION ALL "
            "SELECT e.id, e.type, e.address, e.category, s.reason, s.source, s.created_at "
            "FROM events e LEFT JOIN suppressions s ON s.address = e.address AND "
            "s.category = e.category WHERE e.id > ? AND e.type IN "
            "('suppression-added', 'suppression-removed') ORDER BY 1") {}

  SQLite::Statement insert_message;
  SQLite::Statement insert_event;
  SQLite::Statement find_suppression;
  SQLite::Statement insert_suppression;
  SQLite::Statement insert_campaign;
  SQLite::Statement claim;
  SQLite::Statement claim_retries;
  SQLite::Statement mark_suppressed;
  SQLite::Statement record;
  SQLite::Statement record_event;
  SQLite::Statement suppression_changes;
};

SqliteStore::SqliteStore(const std::string& path, bool checkpoints, SqliteOpen open)
    : db_(open == SqliteOpen::create ? created_private(path) : existing_file(path),
          SQLite::OPEN_READWRITE | SQLite::OPEN_FULLMUTEX |
              (open == SqliteOpen::create ? SQLite::OPEN_CREATE : 0),
          kBusyTimeoutMs) {
  wait_when_busy(db_.getHandle(), std::chrono::milliseconds(kBusyTimeoutMs));
  // Before anything here writes to the file: an existing-only open changes nothing it refuses.
  if (open == SqliteOpen::existing) require_current_sqlite_schema(db_);
  db_.exec("PRAGMA journal_mode = WAL");
  // NORMAL in WAL mode survives a crash of the process (kill -9) without losing a commit; only a
  // power failure can lose the last transactions, which then means a resend, never a lost message.
  db_.exec("PRAGMA synchronous = NORMAL");
  db_.exec("PRAGMA foreign_keys = ON");
  if (!checkpoints) db_.exec("PRAGMA wal_autocheckpoint = 0");
  if (open == SqliteOpen::create) migrate_sqlite_schema(db_);
  st_ = std::make_unique<Statements>(db_);
}

SqliteStore::~SqliteStore() = default;

int SqliteStore::schema_version() { return sqlite_schema_version(); }

void SqliteStore::add_event(UnixMillis at, const char* type, const std::string& address,
                            std::optional<MessageId> message, const std::string& category,
                            const std::string& campaign, const std::string& source,
                            const std::string& detail) {
  auto& st = st_->insert_event;
  st.reset();
  st.bind(1, static_cast<int64_t>(at));
  st.bind(2, type);
  st.bind(3, address);
  if (message) {
    st.bind(4, static_cast<int64_t>(*message));
  } else {
    st.bind(4);
  }
  st.bind(5, category);
  st.bind(6, campaign);
  st.bind(7, source);
  st.bind(8, detail);
  st.exec();
}

std::optional<Suppression> SqliteStore::find_suppression(const std::string& address,
                                                         const std::string& category) {
  auto& st = st_->find_suppression;
  st.reset();
  st.bind(1, address);
  st.bind(2, category);
  if (!st.executeStep()) {
    st.reset();
    // Not under the address: perhaps under its hash, if the address was forgotten.
    if (address.rfind(kForgottenKeyPrefix, 0) == 0) return std::nullopt;
    st.bind(1, forgotten_key(address));
    st.bind(2, category);
    if (!st.executeStep()) {
      st.reset();
      return std::nullopt;
    }
  }
  Suppression found = read_suppression(st);
  // Finish the statement now: left active, it would hold this connection's read snapshot open,
  // so its next write would fail as busy once another connection had committed, and the WAL
  // could not be checkpointed past it.
  st.reset();
  return found;
}

std::vector<EnqueueResult> SqliteStore::enqueue(std::span<const NewMessage> messages,
                                                const std::string& source, UnixMillis now) {
  std::vector<EnqueueResult> results;
  results.reserve(messages.size());
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  auto& ins = st_->insert_message;
  auto& new_campaign = st_->insert_campaign;
  const std::string* last_campaign = nullptr;  // a batch is most often one campaign's
  for (const NewMessage& m : messages) {
    if (!m.campaign.empty() && (!last_campaign || *last_campaign != m.campaign)) {
      new_campaign.reset();
      new_campaign.bind(1, m.campaign);
      new_campaign.bind(2, "");
      new_campaign.bind(3, static_cast<int64_t>(now));
      new_campaign.exec();
      last_campaign = &m.campaign;
    }
    auto suppression = find_suppression(m.recipient, m.category);
    if (suppression && suppression->address != m.recipient) {
      // The person asked to be forgotten: their address is stored nowhere, not even here.
      add_event(now, "suppressed", suppression->address, std::nullopt, m.category, m.campaign,
                source, "not queued (" + suppression_summary(*suppression) + ")");
      results.push_back({EnqueueStatus::suppressed, 0});
      continue;
    }
    ins.reset();
    bind_optional_text(ins, 1, m.campaign);
    ins.bind(2, m.category);
    ins.bind(3, m.recipient);
    ins.bind(4, m.vars_json);
    ins.bind(5, suppression ? "suppressed" : "queued");
    ins.bind(6, static_cast<int64_t>(now));
    ins.bind(7, static_cast<int64_t>(now));
    ins.bind(8, static_cast<int64_t>(now));
    if (ins.exec() == 0) {
      results.push_back({EnqueueStatus::already_queued, 0});
      continue;
    }
    MessageId id = db_.getLastInsertRowid();
    if (suppression) {
      add_event(now, "suppressed", m.recipient, id, m.category, m.campaign, source,
                "suppressed when queued (" + suppression_summary(*suppression) + ")");
      results.push_back({EnqueueStatus::suppressed, id});
    } else {
      add_event(now, "enqueued", m.recipient, id, m.category, m.campaign, source, "");
      results.push_back({EnqueueStatus::queued, id});
    }
  }
  tx.commit();
  return results;
}

std::vector<UpdateStatus> SqliteStore::update_vars(std::span<const NewMessage> messages,
                                                   const std::string& source, UnixMillis now) {
  std::vector<UpdateStatus> results;
  results.reserve(messages.size());
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement update(db_,
                           "UPDATE messages SET vars = ?1, updated_at = ?2 WHERE campaign = ?3 AND "
                           "recipient = ?4 AND state IN ('queued', 'deferred', 'failed') "
                           "RETURNING id, category");
  SQLite::Statement held(db_, "SELECT 1 FROM messages WHERE campaign = ? AND recipient = ?");
  for (const NewMessage& m : messages) {
    update.reset();
    update.bind(1, m.vars_json);
    update.bind(2, static_cast<int64_t>(now));
    bind_optional_text(update, 3, m.campaign);
    update.bind(4, m.recipient);
    if (update.executeStep()) {
      MessageId id = update.getColumn(0).getInt64();
      std::string category = update.getColumn(1).getString();
      while (update.executeStep()) {
      }
      add_event(now, "vars-updated", m.recipient, id, category, m.campaign, source,
                "template variables replaced by a corrected import");
      results.push_back(UpdateStatus::updated);
      continue;
    }
    held.reset();
    bind_optional_text(held, 1, m.campaign);
    held.bind(2, m.recipient);
    results.push_back(held.executeStep() ? UpdateStatus::not_waiting : UpdateStatus::not_found);
  }
  tx.commit();
  return results;
}

StateCounts SqliteStore::counts(const std::optional<std::string>& campaign) {
  SQLite::Statement st(db_, campaign ? "SELECT state, count(*) FROM messages WHERE campaign = ? "
                                       "GROUP BY state"
                                     : "SELECT state, count(*) FROM messages GROUP BY state");
  if (campaign) st.bind(1, *campaign);
  StateCounts c;
  while (st.executeStep()) {
    if (auto s = parse_message_state(st.getColumn(0).getString()))
      c[*s] = st.getColumn(1).getInt64();
  }
  return c;
}

std::vector<SuppressOutcome> SqliteStore::suppress(std::span<const Suppression> suppressions,
                                                   UnixMillis now) {
  SynchronousFull full(db_);
  std::vector<SuppressOutcome> outcomes;
  outcomes.reserve(suppressions.size());
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  for (const Suppression& given : suppressions) {
    outcomes.push_back(suppress_one(given, now, std::nullopt, ""));
  }
  tx.commit();
  return outcomes;
}

SuppressOutcome SqliteStore::suppress_one(const Suppression& given, UnixMillis now,
                                          std::optional<MessageId> message,
                                          const std::string& campaign) {
  Suppression s = under_forgotten_key(given);
  if (s.created_at == 0) s.created_at = now;
  std::string reason(to_string(s.reason));
  std::string scope = s.category.empty() ? " (all mail)" : "";
  if (insert_suppression(st_->insert_suppression, s)) {
    add_event(now, "suppression-added", s.address, message, s.category, campaign, s.source,
              reason + scope);
    return SuppressOutcome::added;
  }
  if (!is_recipient_choice(s.reason)) {
    return SuppressOutcome::unchanged;  // its first record stays the evidence
  }
  // The person's own request, for a suppression that exists: never lost behind it.
  auto existing = exact_suppression(s.address, s.category);
  if (existing && stronger_reason(s.reason, existing->reason)) {
    SQLite::Statement raise(db_,
                            "UPDATE suppressions SET reason = ?, source = ? WHERE address = ? "
                            "AND category = ?");
    raise.bind(1, reason);
    raise.bind(2, s.source);
    raise.bind(3, s.address);
    raise.bind(4, s.category);
    raise.exec();
    add_event(now, "suppression-added", s.address, message, s.category, campaign, s.source,
              reason + scope + ", raised from " + std::string(to_string(existing->reason)) +
                  " (suppressed since " + format_iso8601(existing->created_at) + ")");
    return SuppressOutcome::raised;
  }
  add_event(now, "suppression-requested", s.address, message, s.category, campaign, s.source,
            reason + scope + ": already suppressed" +
                (existing ? " (" + std::string(to_string(existing->reason)) + " since " +
                                format_iso8601(existing->created_at) + ")"
                          : ""));
  return SuppressOutcome::recorded;
}

Suppression SqliteStore::under_forgotten_key(const Suppression& s) {
  if (s.address.rfind(kForgottenKeyPrefix, 0) == 0) return s;
  std::string key = forgotten_key(s.address);
  SQLite::Statement st(db_,
                       "SELECT EXISTS (SELECT 1 FROM suppressions WHERE address = ?1) AND NOT "
                       "EXISTS (SELECT 1 FROM suppressions WHERE address = ?2) AND NOT EXISTS "
                       "(SELECT 1 FROM messages WHERE recipient = ?2)");
  st.bind(1, key);
  st.bind(2, s.address);
  st.executeStep();
  if (st.getColumn(0).getInt() == 0) return s;
  Suppression keyed = s;
  keyed.address = std::move(key);
  return keyed;
}

std::optional<Suppression> SqliteStore::exact_suppression(const std::string& address,
                                                          const std::string& category) {
  SQLite::Statement st(db_,
                       "SELECT address, category, reason, source, created_at FROM suppressions "
                       "WHERE address = ? AND category = ?");
  st.bind(1, address);
  st.bind(2, category);
  if (!st.executeStep()) return std::nullopt;
  return read_suppression(st);
}

LiftResult SqliteStore::unsuppress(const std::string& address_given, const std::string& category,
                                   const std::string& source, UnixMillis now, bool consent_given) {
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  std::string address = address_given;
  auto existing = exact_suppression(address, category);
  if (!existing) {  // a forgotten address's, kept (and lifted, and recorded) under its hash
    address = forgotten_key(address_given);
    existing = exact_suppression(address, category);
  }
  if (!existing) return {LiftStatus::not_found, std::nullopt};
  if (is_recipient_choice(existing->reason) && !consent_given)
    return {LiftStatus::needs_consent, existing};
  SQLite::Statement st(db_, "DELETE FROM suppressions WHERE address = ? AND category = ?");
  st.bind(1, address);
  st.bind(2, category);
  st.exec();
  add_event(now, "suppression-removed", address, std::nullopt, category, "", source,
            "lifted " + std::string(to_string(existing->reason)) +
                (category.empty() ? " (all mail)" : ""));
  tx.commit();
  return {LiftStatus::lifted, existing};
}

void SqliteStore::for_each_suppression(const std::function<void(const Suppression&)>& fn) {
  SQLite::Statement st(db_,
                       "SELECT address, category, reason, source, created_at FROM suppressions "
                       "ORDER BY address, category");
  while (st.executeStep()) fn(read_suppression(st));
}

std::vector<Event> SqliteStore::history(const std::string& address) {
  SQLite::Statement st(db_,
                       "SELECT id, at, type, address, message, category, campaign, source, detail "
                       "FROM events WHERE address IN (?, ?) ORDER BY id");
  st.bind(1, address);
  st.bind(2, forgotten_key(address));
  std::vector<Event> out;
  while (st.executeStep()) {
    Event e;
    e.id = st.getColumn(0).getInt64();
    e.at = st.getColumn(1).getInt64();
    e.type = st.getColumn(2).getString();
    e.address = st.getColumn(3).getString();
    if (!st.getColumn(4).isNull()) e.message = st.getColumn(4).getInt64();
    e.category = st.getColumn(5).getString();
    e.campaign = st.getColumn(6).getString();
    e.source = st.getColumn(7).getString();
    e.detail = st.getColumn(8).getString();
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<Campaign> SqliteStore::read_campaigns(const std::optional<std::string>& name) {
  std::vector<Campaign> out;
  const std::string columns =
      "SELECT name, origin, created_at, paused_at, pause_reason, resumed_at FROM campaigns ";
  SQLite::Statement st(db_, columns + (name ? "WHERE name = ?" : "ORDER BY created_at, name"));
  if (name) st.bind(1, *name);
  while (st.executeStep()) {
    Campaign c;
    c.name = st.getColumn(0).getString();
    c.origin = st.getColumn(1).getString();
    c.created_at = st.getColumn(2).getInt64();
    if (!st.getColumn(3).isNull()) c.paused_at = st.getColumn(3).getInt64();
    c.pause_reason = text_or_empty(st.getColumn(4));
    c.last_activity = c.created_at;
    if (!st.getColumn(5).isNull()) c.resumed_at = st.getColumn(5).getInt64();
    out.push_back(std::move(c));
  }
  st.reset();
  if (out.empty()) return out;
  // Counts, feedback and the newest change, from the (campaign, state, feedback) index.
  SQLite::Statement counts(db_, name ? "SELECT campaign, state, feedback, count(*), "
                                       "max(updated_at) FROM messages WHERE campaign = ? GROUP BY "
                                       "campaign, state, feedback"
                                     : "SELECT campaign, state, feedback, count(*), "
                                       "max(updated_at) FROM messages WHERE campaign IS NOT NULL "
                                       "GROUP BY campaign, state, feedback");
  if (name) counts.bind(1, *name);
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < out.size(); ++i) index.emplace(out[i].name, i);
  while (counts.executeStep()) {
    auto it = index.find(counts.getColumn(0).getString());
    if (it == index.end()) continue;  // messages of a campaign row not there (none: migrated)
    Campaign& c = out[it->second];
    auto state = parse_message_state(counts.getColumn(1).getString());
    std::string feedback = text_or_empty(counts.getColumn(2));
    std::int64_t n = counts.getColumn(3).getInt64();
    if (state) {
      c.counts[*state] += n;
      add_feedback(c.feedback, *state, feedback, n);
    }
    c.last_activity = std::max<UnixMillis>(c.last_activity, counts.getColumn(4).getInt64());
  }
  counts.reset();
  for (Campaign& c : out) {
    c.feedback_since_resume = c.resumed_at ? feedback_since(c.name, *c.resumed_at) : c.feedback;
  }
  return out;
}

CampaignFeedback SqliteStore::feedback_since(const std::string& campaign, UnixMillis since) {
  // A message's updated_at is when it was answered (sent or failed): a bounce or complaint that
  // comes later leaves it, so a late report about a message sent before `since` is not counted.
  CampaignFeedback f;
  SQLite::Statement st(db_,
                       "SELECT state, feedback, count(*) FROM messages WHERE campaign = ? AND "
                       "updated_at >= ? GROUP BY state, feedback");
  st.bind(1, campaign);
  st.bind(2, static_cast<int64_t>(since));
  while (st.executeStep()) {
    if (auto state = parse_message_state(st.getColumn(0).getString())) {
      add_feedback(f, *state, text_or_empty(st.getColumn(1)), st.getColumn(2).getInt64());
    }
  }
  return f;
}

Campaign SqliteStore::open_campaign(const std::string& name, const std::string& origin,
                                    UnixMillis now) {
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  auto& ins = st_->insert_campaign;
  ins.reset();
  ins.bind(1, name);
  ins.bind(2, origin);
  ins.bind(3, static_cast<int64_t>(now));
  ins.exec();
  auto found = read_campaigns(name);
  tx.commit();
  return found.at(0);
}

std::optional<Campaign> SqliteStore::campaign(const std::string& name) {
  SQLite::Transaction tx(db_);  // one snapshot for the row and its counts
  auto found = read_campaigns(name);
  tx.commit();
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

bool SqliteStore::drop_campaign_if_empty(const std::string& name) {
  SQLite::Statement st(db_,
                       "DELETE FROM campaigns WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM "
                       "messages WHERE campaign = ?1)");
  st.bind(1, name);
  return st.exec() > 0;
}

std::vector<Campaign> SqliteStore::campaigns() {
  SQLite::Transaction tx(db_);
  auto all = read_campaigns(std::nullopt);
  tx.commit();
  return all;
}

std::optional<std::int64_t> SqliteStore::set_campaign_paused(const std::string& name, bool paused,
                                                             UnixMillis now) {
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement known(db_, "SELECT paused_at IS NOT NULL FROM campaigns WHERE name = ?");
  known.bind(1, name);
  if (!known.executeStep()) return std::nullopt;
  if ((known.getColumn(0).getInt() != 0) == paused) return 0;  // already as asked
  known.reset();
  // Resuming: the automatic pause judges what is answered from now on.
  SQLite::Statement mark(db_, paused ? "UPDATE campaigns SET paused_at = ?1 WHERE name = ?2"
                                     : "UPDATE campaigns SET paused_at = NULL, pause_reason = "
                                       "NULL, resumed_at = ?1 WHERE name = ?2");
  mark.bind(1, static_cast<int64_t>(now));
  mark.bind(2, name);
  mark.exec();
  std::int64_t n = shift_campaign(name, paused);
  tx.commit();
  return n;
}

std::int64_t SqliteStore::shift_campaign(const std::string& name, bool hold) {
  SQLite::Statement shift(db_, hold ? "UPDATE messages SET next_attempt_at = next_attempt_at + "
                                      "?1 WHERE campaign = ?2 AND state IN ('queued', "
                                      "'deferred') AND next_attempt_at < ?1"
                                    : "UPDATE messages SET next_attempt_at = next_attempt_at - "
                                      "?1 WHERE campaign = ?2 AND state IN ('queued', "
                                      "'deferred') AND next_attempt_at >= ?1");
  shift.bind(1, static_cast<int64_t>(kPausedOffset));
  shift.bind(2, name);
  return shift.exec();
}

std::int64_t SqliteStore::cancel_campaign(const std::string& campaign, const std::string& source,
                                          UnixMillis now) {
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement st(db_,
                       "UPDATE messages SET state = 'cancelled', updated_at = ? WHERE campaign = ? "
                       "AND state IN ('queued','deferred') RETURNING id, recipient, category");
  st.bind(1, static_cast<int64_t>(now));
  st.bind(2, campaign);
  std::int64_t n = 0;
  std::vector<Event> events;
  while (st.executeStep()) {
    ++n;
    events.push_back({0, now, "cancelled", st.getColumn(1).getString(), st.getColumn(0).getInt64(),
                      st.getColumn(2).getString(), campaign, source, ""});
  }
  for (const Event& e : events) {
    add_event(now, "cancelled", e.address, e.message, e.category, campaign, source, "");
  }
  tx.commit();
  return n;
}

std::int64_t SqliteStore::retry_campaign(const std::string& campaign, const std::string& source,
                                         UnixMillis now) {
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  SQLite::Statement st(
      db_, "UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = ?1 + " +
               paused_shift("?2") +
               ", updated_at = ?1 WHERE campaign = ?2 AND state IN ('failed','deferred') "
               "RETURNING id, recipient, category");
  st.bind(1, static_cast<int64_t>(now));
  st.bind(2, campaign);
  std::vector<Event> events;
  while (st.executeStep()) {
    events.push_back({0, now, "requeued", st.getColumn(1).getString(), st.getColumn(0).getInt64(),
                      st.getColumn(2).getString(), campaign, source, ""});
  }
  for (const Event& e : events) {
    add_event(now, "requeued", e.address, e.message, e.category, campaign, source, "");
  }
  tx.commit();
  return static_cast<std::int64_t>(events.size());
}

std::vector<ClaimedMessage> SqliteStore::claim_due(const std::string& owner, std::size_t limit,
                                                   UnixMillis now, UnixMillis lease_until) {
  std::vector<ClaimedMessage> leased;
  std::vector<MessageId> suppressed;  // whose recipient the claim found suppressed
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  auto lease = [&](SQLite::Statement& st, std::size_t n) {
    st.reset();
    st.bind(1, owner);
    st.bind(2, static_cast<int64_t>(lease_until));
    st.bind(3, static_cast<int64_t>(now));
    st.bind(4, static_cast<int64_t>(n));
    while (st.executeStep()) {
      ClaimedMessage m;
      m.id = st.getColumn(0).getInt64();
      m.campaign = text_or_empty(st.getColumn(1));
      m.category = st.getColumn(2).getString();
      m.recipient = st.getColumn(3).getString();
      m.vars_json = st.getColumn(4).getString();
      m.attempts = st.getColumn(5).getInt();
      m.created_at = st.getColumn(6).getInt64();
      m.lease_owner = owner;
      if (st.getColumn(7).getInt()) suppressed.push_back(m.id);
      leased.push_back(std::move(m));
    }
    st.reset();
  };
  // Due retries first, up to their share; then whatever is due, oldest due first.
  lease(st_->claim_retries, retry_share(limit));
  lease(st_->claim, limit - leased.size());
  std::sort(suppressed.begin(), suppressed.end());
  // RETURNING follows no particular order: hand them out oldest first.
  std::sort(leased.begin(), leased.end(),
            [](const ClaimedMessage& a, const ClaimedMessage& b) { return a.id < b.id; });
  std::vector<ClaimedMessage> claimed;
  claimed.reserve(leased.size());
  for (ClaimedMessage& m : leased) {
    // The opt-out check that matters: made in the claim itself, the last moment before the
    // message is handed to a sender, so a suppression added while the message waited always wins.
    // (The senders' SuppressionWatch covers the time between the claim and the delivery.)
    bool flagged = std::binary_search(suppressed.begin(), suppressed.end(), m.id);
    if (auto s = flagged ? find_suppression(m.recipient, m.category) : std::nullopt) {
      std::string why = "recipient suppressed (" + suppression_summary(*s) + ")";
      auto& ms = st_->mark_suppressed;
      ms.reset();
      ms.bind(1, why);
      ms.bind(2, static_cast<int64_t>(now));
      ms.bind(3, static_cast<int64_t>(m.id));
      ms.exec();
      add_event(now, "suppressed", m.recipient, m.id, m.category, m.campaign, owner, why);
      continue;
    }
    claimed.push_back(std::move(m));
  }
  tx.commit();
  return claimed;
}

std::vector<CampaignPaused> SqliteStore::record_outcomes(std::span<const Outcome> outcomes,
                                                         UnixMillis now) {
  std::vector<MessageId> refused;  // hard bounces and blocks: they may trip a campaign's pause
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  auto& st = st_->record;
  for (const Outcome& o : outcomes) {
    std::string state(to_string(o.state));
    st.reset();
    st.bind(1, state);
    if (o.reply_code) {
      st.bind(2, o.reply_code);
    } else {
      st.bind(2);
    }
    st.bind(3, o.reply);
    st.bind(4, static_cast<int64_t>(o.next_attempt_at ? o.next_attempt_at : now));
    bind_optional_text(st, 5, o.message_id_header);
    st.bind(6, static_cast<int64_t>(now));
    st.bind(7, static_cast<int64_t>(o.id));
    bind_optional_text(st, 8, feedback_name(o.bounce_class));
    st.bind(9, o.lease_owner);  // the claim it ends ('' for any)
    st.bind(10, o.claimed_attempts);
    if (st.exec() == 0) continue;  // no longer ours: the lease was recovered meanwhile
    const char* type = o.state == MessageState::queued ? "released" : to_string(o.state).data();
    // A relay's reply line starts with its code already ("250 2.0.0 Ok"): add it only when not.
    std::string code = o.reply_code ? std::to_string(o.reply_code) : "";
    std::string detail = o.reply.rfind(code, 0) == 0 ? o.reply : code + " " + o.reply;
    auto& ev = st_->record_event;
    ev.reset();
    ev.bind(1, static_cast<int64_t>(now));
    ev.bind(2, type);
    ev.bind(3, detail);
    ev.bind(4, static_cast<int64_t>(o.id));
    ev.bind(5, outcome_source(o));
    ev.exec();
    if (o.bounce_class == BounceClass::hard || o.bounce_class == BounceClass::policy) {
      refused.push_back(o.id);
    }
    if (o.bounce_class == BounceClass::hard) {
      SQLite::Statement who(db_,
                            "SELECT recipient, COALESCE(campaign, '') FROM messages WHERE id = ?");
      who.bind(1, static_cast<int64_t>(o.id));
      if (!who.executeStep()) continue;
      std::string recipient = who.getColumn(0).getString();
      std::string campaign = who.getColumn(1).getString();
      Suppression s{recipient, "", SuppressionReason::hard_bounce, "smtp", now};
      if (insert_suppression(st_->insert_suppression, s)) {
        add_event(now, "suppression-added", recipient, o.id, "", campaign, "smtp",
                  "hard-bounce (all mail): " + detail);
      }
    }
  }
  std::vector<CampaignPaused> paused = pause_refused(refused, now);
  tx.commit();
  return paused;
}

std::vector<CampaignPaused> SqliteStore::pause_refused(std::span<const MessageId> refused,
                                                       UnixMillis now) {
  std::vector<CampaignPaused> paused;
  if (!feedback_policy_ || refused.empty()) return paused;
  std::vector<std::string> campaigns;
  for (MessageId id : refused) {
    auto m = find_message(id);
    if (m && !m->campaign.empty() &&
        std::find(campaigns.begin(), campaigns.end(), m->campaign) == campaigns.end()) {
      campaigns.push_back(m->campaign);
    }
  }
  for (const std::string& c : campaigns) {
    if (auto reason = pause_if_tripped(c, *feedback_policy_, now)) {
      paused.push_back({c, std::move(*reason)});
    }
  }
  return paused;
}

std::vector<CampaignPaused> SqliteStore::pause_tripped_campaigns(UnixMillis now) {
  std::vector<CampaignPaused> paused;
  if (!feedback_policy_) return paused;
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  std::vector<std::string> sending;
  {
    SQLite::Statement st(db_,
                         "SELECT name FROM campaigns c WHERE paused_at IS NULL AND EXISTS (SELECT "
                         "1 FROM messages WHERE campaign = c.name AND state IN ('queued', "
                         "'deferred'))");
    while (st.executeStep()) sending.push_back(st.getColumn(0).getString());
  }
  for (const std::string& c : sending) {
    if (auto reason = pause_if_tripped(c, *feedback_policy_, now)) {
      paused.push_back({c, std::move(*reason)});
    }
  }
  tx.commit();
  return paused;
}

RecoveredLeases SqliteStore::recover_leases(UnixMillis expired_by, UnixMillis now,
                                            const std::optional<std::vector<MessageId>>& started) {
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  // The daemons whose leases run out, read before the update forgets them.
  std::unordered_map<MessageId, std::string> owner_of;
  {
    SQLite::Statement who(db_,
                          "SELECT id, COALESCE(lease_owner, '') FROM messages WHERE state = "
                          "'sending' AND lease_expires_at <= ?1");
    who.bind(1, static_cast<int64_t>(expired_by));
    while (who.executeStep()) owner_of[who.getColumn(0).getInt64()] = who.getColumn(1).getString();
  }
  SQLite::Statement st(db_,
                       "UPDATE messages SET state = 'queued', lease_owner = NULL, "
                       "lease_expires_at = NULL, updated_at = ?1, next_attempt_at = "
                       "next_attempt_at + CASE WHEN next_attempt_at < " +
                           std::to_string(kPausedOffset) + " THEN " +
                           paused_shift("messages.campaign") +
                           " ELSE 0 END WHERE state = 'sending' AND "
                           "lease_expires_at <= ?2 RETURNING id, recipient, category, "
                           "COALESCE(campaign, '')");
  st.bind(1, static_cast<int64_t>(now));
  st.bind(2, static_cast<int64_t>(expired_by));
  std::vector<Event> events;
  while (st.executeStep()) {
    events.push_back({0, now, "", st.getColumn(1).getString(), st.getColumn(0).getInt64(),
                      st.getColumn(2).getString(), st.getColumn(3).getString(), "recovery", ""});
  }
  st.reset();
  RecoveredLeases r;
  SQLite::Statement give_back(db_,
                              "UPDATE messages SET attempts = max(attempts - 1, 0) WHERE id = ?");
  for (const Event& e : events) {
    bool may_have_started =
        !started || std::find(started->begin(), started->end(), *e.message) != started->end();
    if (may_have_started) {
      r.possible_duplicates.push_back(*e.message);
      r.owners.push_back(owner_of[*e.message]);
      add_event(now, "lease-expired", e.address, e.message, e.category, e.campaign, e.source,
                lease_expired_detail(r.owners.back()));
    } else {
      ++r.never_tried;
      give_back.reset();
      give_back.bind(1, static_cast<int64_t>(*e.message));
      give_back.exec();
      add_event(now, "released", e.address, e.message, e.category, e.campaign, e.source,
                "claimed but not yet tried when the last daemon stopped: queued again");
    }
  }
  tx.commit();
  return r;
}

std::string SqliteStore::forgotten_key(const std::string& address) {
  if (!forget_mac_) {
    SQLite::Statement st(db_, "SELECT value FROM meta WHERE key = 'forget_salt'");
    if (!st.executeStep()) throw std::runtime_error("the database has no forget_salt");
    auto salt = st.getColumn(0);
    forget_mac_ = std::make_unique<HmacSha256>(std::string_view(
        static_cast<const char*>(salt.getBlob()), static_cast<std::size_t>(salt.getBytes())));
  }
  auto mac = forget_mac_->mac(address);
  return std::string(kForgottenKeyPrefix) +
         hex_encode(std::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
}

namespace {

// PRAGMA secure_delete on for as long as it lives, then the connection's own setting again, on
// every way out, an exception included. The setting is the connection's, and its default is the
// build's: Debian's SQLite is built with SQLITE_SECURE_DELETE, so it is already on there, and
// turning it plainly off afterwards would lower it for every later delete on the connection.
class SecureDelete {
 public:
  explicit SecureDelete(SQLite::Database& db)
      : db_(db), was_(db.execAndGet("PRAGMA secure_delete").getInt()) {
    db_.exec("PRAGMA secure_delete = ON");
  }
  ~SecureDelete() {
    try {
      db_.exec(was_ == 0   ? "PRAGMA secure_delete = OFF"
               : was_ == 2 ? "PRAGMA secure_delete = FAST"
                           : "PRAGMA secure_delete = ON");
    } catch (...) {
      // A destructor must not throw: it may run while another exception unwinds. Left on, the
      // connection overwrites more than it must: slower, never less private.
    }
  }
  SecureDelete(const SecureDelete&) = delete;
  SecureDelete& operator=(const SecureDelete&) = delete;

 private:
  SQLite::Database& db_;
  int was_;  // 0 off, 1 on, 2 fast
};

}  // namespace

ForgetResult SqliteStore::forget(const std::string& address, const std::string& source,
                                 UnixMillis now) {
  ForgetResult r;
  r.key = forgotten_key(address);
  {
    // What is deleted is overwritten, not left in free pages of the file.
    SecureDelete secure_delete(db_);
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    // The suppressions first, under the key (meeting one kept there by an earlier forget, the
    // stronger reason and the older time stay): then no suppression names the address, and its
    // evidence may go.
    SQLite::Statement keep(db_,
                           "INSERT INTO suppressions (address, category, reason, source, "
                           "created_at) SELECT ?1, category, reason, source, created_at FROM "
                           "suppressions WHERE address = ?2 " +
                               keep_stronger_suppression_sql());
    keep.bind(1, r.key);
    keep.bind(2, address);
    keep.exec();
    SQLite::Statement drop(db_, "DELETE FROM suppressions WHERE address = ?");
    drop.bind(1, address);
    std::int64_t moved = drop.exec();
    SQLite::Statement sending(
        db_, "SELECT count(*) FROM messages WHERE recipient = ? AND state = 'sending'");
    sending.bind(1, address);
    sending.executeStep();
    r.in_flight = sending.getColumn(0).getInt64();
    sending.reset();
    SQLite::Statement messages(db_, "DELETE FROM messages WHERE recipient = ?");
    messages.bind(1, address);
    r.messages = messages.exec();
    SQLite::Statement events(db_, "DELETE FROM events WHERE address = ?");
    events.bind(1, address);
    r.events = events.exec();
    SQLite::Statement soft(db_, "DELETE FROM soft_bounces WHERE address = ?");
    soft.bind(1, address);
    soft.exec();
    SQLite::Statement kept(db_,
                           "SELECT address, category, reason, source, created_at FROM "
                           "suppressions WHERE address = ? ORDER BY category");
    kept.bind(1, r.key);
    while (kept.executeStep()) r.suppressions.push_back(read_suppression(kept));
    kept.reset();
    if (r.messages > 0 || r.events > 0 || moved > 0) {  // nothing stored: nothing to record
      auto count = [](std::int64_t n, const char* what) {
        return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
      };
      add_event(now, "forgotten", r.key, std::nullopt, "", "", source,
                "erased " + count(r.messages, "message") + " and " + count(r.events, "event") +
                    "; " + count(static_cast<std::int64_t>(r.suppressions.size()), "suppression") +
                    " kept under this key");
    }
    tx.commit();
  }
  // The log still holds the pages as they were before: copy them back and empty it, unless a
  // reader's snapshot still needs them (then the next checkpoint does it).
  SQLite::Statement checkpoint(db_, "PRAGMA wal_checkpoint(TRUNCATE)");
  if (checkpoint.executeStep()) r.log_emptied = checkpoint.getColumn(0).getInt() == 0;
  return r;
}

namespace {

// Where retention's walk through a table stands, kept in `meta` between calls (0 when absent).
std::int64_t walked_to(SQLite::Database& db, const char* key) {
  SQLite::Statement st(db, "SELECT value FROM meta WHERE key = ?");
  st.bind(1, key);
  return st.executeStep() ? st.getColumn(0).getInt64() : 0;
}

void set_walked_to(SQLite::Database& db, const char* key, std::int64_t id) {
  SQLite::Statement st(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  st.bind(1, key);
  st.bind(2, static_cast<int64_t>(id));
  st.exec();
}

// One step of a walk in id order through `table`: looks at up to `scan` rows after `from`, whose
// time column (created_at, at) says when to stop, and collects at most `limit` ids `doomed` says
// may go. Returns the last id looked at and whether the walk reached the cutoff (or the end).
struct Walk {
  std::vector<std::int64_t> doomed;
  std::int64_t last = 0;
  bool reached_end = true;
};
template <typename Doomed>
Walk walk(SQLite::Database& db, const char* select, std::int64_t from, UnixMillis before,
          std::size_t limit, std::size_t scan, Doomed doomed) {
  Walk w;
  w.last = from;
  SQLite::Statement st(db, select);
  st.bind(1, static_cast<int64_t>(from));
  st.bind(2, static_cast<int64_t>(scan));
  std::size_t seen = 0;
  while (st.executeStep()) {
    ++seen;
    if (st.getColumn(1).getInt64() >= before) return w;  // ids follow time: nothing later is due
    w.last = st.getColumn(0).getInt64();
    if (doomed(st)) w.doomed.push_back(w.last);
    if (w.doomed.size() >= limit) break;
  }
  w.reached_end = seen < scan && w.doomed.size() < limit;
  return w;
}

std::int64_t delete_ids(SQLite::Database& db, const char* sql,
                        const std::vector<std::int64_t>& ids) {
  SQLite::Statement st(db, sql);
  std::int64_t n = 0;
  for (std::int64_t id : ids) {
    st.reset();
    st.bind(1, static_cast<int64_t>(id));
    n += st.exec();
  }
  return n;
}

}  // namespace

PruneResult SqliteStore::prune(std::optional<UnixMillis> messages_before,
                               std::optional<UnixMillis> events_before, std::size_t limit) {
  PruneResult r;
  const std::size_t scan = limit * 10;  // rows looked at per call, kept or not
  SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
  if (messages_before) {
    // Finished messages, by id. A message still waiting, or finished only lately, is stepped over;
    // a walk that reaches the cutoff starts again from the first message next time, since what
    // it stepped over may be due by then.
    Walk w =
        walk(db_,
             "SELECT id, created_at, state, updated_at FROM messages WHERE id > ? ORDER BY "
             "id LIMIT ?",
             walked_to(db_, "messages_walked_to"), *messages_before, limit, scan,
             [&](SQLite::Statement& st) {
               auto state = parse_message_state(st.getColumn(2).getString());
               return state && is_finished(*state) && st.getColumn(3).getInt64() < *messages_before;
             });
    r.messages = delete_ids(db_, "DELETE FROM messages WHERE id = ?", w.doomed);
    set_walked_to(db_, "messages_walked_to", w.reached_end ? 0 : w.last);
    r.more = r.more || !w.reached_end;
  }
  if (events_before) {
    // Events, by id (events are written in time order), stepping over the evidence of
    // suppressions: the walk never comes back, so each event is looked at once.
    Walk w = walk(db_, "SELECT id, at, type FROM events WHERE id > ? ORDER BY id LIMIT ?",
                  walked_to(db_, "events_walked_to"), *events_before, limit, scan,
                  [](SQLite::Statement& st) {
                    return !is_suppression_evidence(st.getColumn(2).getString());
                  });
    r.events = delete_ids(db_, "DELETE FROM events WHERE id = ?", w.doomed);
    set_walked_to(db_, "events_walked_to", w.last);
    r.more = r.more || !w.reached_end;
    // The evidence of suppressions no longer in force, which the schema's trigger lets go: found
    // from the lifts (events_lifted), so that a call reads what was lifted, not every
    // suppression's evidence. The lifts themselves go last: a call cut short leaves them to find
    // the rest by.
    if (static_cast<std::size_t>(r.events) < limit) {
      SQLite::Statement lifted(
          db_,
          "DELETE FROM events WHERE id IN (SELECT e.id FROM events r JOIN events e ON e.address = "
          "r.address WHERE r.type = 'suppression-removed' AND r.at < ?1 AND e.type IN " +
              sql_text_list(kSuppressionEvidenceEvents) +
              " AND e.at < ?1 AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.address = "
              "e.address) ORDER BY e.type = 'suppression-removed' LIMIT ?2)");
      lifted.bind(1, static_cast<int64_t>(*events_before));
      lifted.bind(2, static_cast<int64_t>(limit - static_cast<std::size_t>(r.events)));
      r.events += lifted.exec();
      if (static_cast<std::size_t>(r.events) >= limit) r.more = true;
    }
    // The digests of reports taken in (what makes a second delivery count once) live as long as
    // the events they caused.
    SQLite::Statement reports(db_,
                              "DELETE FROM received_reports WHERE digest IN (SELECT digest FROM "
                              "received_reports WHERE at < ? ORDER BY at LIMIT ?)");
    reports.bind(1, static_cast<int64_t>(*events_before));
    reports.bind(2, static_cast<int64_t>(limit));
    if (static_cast<std::size_t>(reports.exec()) >= limit) r.more = true;
  }
  tx.commit();
  return r;
}

std::vector<DaemonState> SqliteStore::daemons() { return {}; }  // one daemon: dispatch_state()

std::int64_t SqliteStore::renew_leases(const std::string& owner, UnixMillis now,
                                       UnixMillis lease_until) {
  SQLite::Statement st(db_,
                       "UPDATE messages SET lease_expires_at = ?1 WHERE state = 'sending' AND "
                       "lease_owner = ?2 AND lease_expires_at < ?3");
  st.bind(1, static_cast<int64_t>(lease_until));
  st.bind(2, owner);
  st.bind(3, static_cast<int64_t>(now + 2 * (lease_until - now) / 3));
  return st.exec();
}

std::int64_t SqliteStore::count_sent_since(UnixMillis since) {
  SQLite::Statement st(
      db_,
      "SELECT count(*) FROM messages WHERE state IN ('sent', 'bounced', 'complained') AND "
      "updated_at >= ?");
  st.bind(1, static_cast<int64_t>(since));
  st.executeStep();
  return st.getColumn(0).getInt64();
}

std::int64_t SqliteStore::last_event_id() {
  return db_.execAndGet("SELECT coalesce(max(id), 0) FROM events").getInt64();
}

SuppressionChanges SqliteStore::suppression_changes(std::int64_t after) {
  auto& st = st_->suppression_changes;
  st.reset();
  st.bind(1, static_cast<int64_t>(after));
  SuppressionChanges out;
  out.last = after;
  while (st.executeStep()) {
    if (st.getColumn(1).getString() == "newest") {  // in the same snapshot as the changes
      out.last = std::max(after, st.getColumn(0).getInt64());
      continue;
    }
    SuppressionChange c;
    c.added = st.getColumn(1).getString() == "suppression-added";
    c.suppression.address = st.getColumn(2).getString();
    c.suppression.category = st.getColumn(3).getString();
    if (!st.getColumn(4).isNull()) {
      c.suppression.reason =
          parse_suppression_reason(st.getColumn(4).getString()).value_or(SuppressionReason::manual);
      c.suppression.source = st.getColumn(5).getString();
      c.suppression.created_at = st.getColumn(6).getInt64();
    }
    out.changes.push_back(std::move(c));
  }
  st.reset();  // release the read snapshot (see find_suppression)
  return out;
}

void SqliteStore::set_dispatch_state(const DispatchState& state) {
  SQLite::Statement st(
      db_,
      "INSERT INTO dispatch_state (id, state, detail, updated_at) VALUES (1, ?, ?, ?) "
      "ON CONFLICT (id) DO UPDATE SET state = excluded.state, detail = excluded.detail, "
      "updated_at = excluded.updated_at");
  st.bind(1, state.state);
  st.bind(2, state.detail);
  st.bind(3, static_cast<int64_t>(state.updated_at));
  st.exec();
}

void SqliteStore::set_config_problem(const std::string& problem) {
  SQLite::Statement st(db_, "UPDATE dispatch_state SET config_problem = ? WHERE id = 1");
  st.bind(1, problem);
  st.exec();
}

std::optional<DispatchState> SqliteStore::dispatch_state() {
  SQLite::Statement st(
      db_, "SELECT state, detail, updated_at, config_problem FROM dispatch_state WHERE id = 1");
  if (!st.executeStep()) return std::nullopt;
  return DispatchState{st.getColumn(0).getString(), st.getColumn(1).getString(),
                       st.getColumn(2).getInt64(), st.getColumn(3).getString()};
}

}  // namespace bulkmail
