#include "store/postgres/pg_store.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_sql.h"

namespace bulkmail {
namespace {

// Rows for_each_suppression reads from its cursor at a time: the list is never held whole.
constexpr int kSuppressionBatch = 1000;

// Several daemons write one database, so a statement that reads before it writes must not act on
// what another commits in between. These are the locks and the statements that make them safe.

// While a suppression decides whether an address was forgotten (under_forgotten_key) and stores
// it, a forget of that address must wait, or the forget would miss the new row and leave the
// address in clear. So both take this transaction-level advisory lock on the address, in the
// two-key space so it never meets the schema migration's ("forg" in ASCII, then one of 1,024
// buckets of the address's hash: an import of 10,000 people holds at most 1,024 of them, where
// one lock a person would overflow the server's lock table).
constexpr const char* kLockAddress =
    "SELECT pg_advisory_xact_lock(1718579815, hashtext($1) & 1023)";
// The same lock, shared, for an enqueue of the address (see PostgresStore::enqueue).
constexpr const char* kLockAddressShared =
    "SELECT pg_advisory_xact_lock_shared(1718579815, hashtext($1) & 1023)";

// A campaign row held FOR SHARE while a call writes its messages: a pause (which updates the row)
// waits for those messages and then holds them back too, and drop_campaign_if_empty (which locks
// the row FOR UPDATE) waits and then sees them. Writers holding it do not wait for each other.
constexpr const char* kShareCampaign = "SELECT 1 FROM campaigns WHERE name = $1 FOR SHARE";

constexpr const char* kSuppressionColumns =
    "SELECT address, category, reason, source, created_at FROM suppressions ";

std::int64_t insert_event(pg::Connection& c, UnixMillis at, const char* type,
                          const std::string& address, std::optional<MessageId> message,
                          const std::string& category, const std::string& campaign,
                          const std::string& source, const std::string& detail) {
  std::string_view t = type;
  if (t == "suppression-added" || t == "suppression-removed") {
    c.run("store_lock_suppression_events", pg::Params());  // see kSuppressionEventsLock
  }
  pg::Result r = c.run("store_insert_event", pg::Params()
                                                 .add(at)
                                                 .add(type)
                                                 .add(address)
                                                 .add(message)
                                                 .add(category)
                                                 .add(campaign)
                                                 .add(source)
                                                 .add(detail));
  return r.int64(0, 0);
}

// Tells every daemon that a suppression was added or lifted (event `event`): NOTIFY is delivered
// when the transaction commits, so a listener never sees a change that is rolled back.
void announce_suppression_change(pg::Connection& c, std::int64_t event) {
  c.run("store_notify_suppression",
        pg::Params().add(pgsql::kSuppressionChannel).add(std::to_string(event)));
}

// Creates the campaign when it does not exist and holds its row FOR SHARE (kShareCampaign) until
// the transaction ends. A drop committed between the two statements leaves no row: create it again.
// Events of one enqueue, one array a field, written in one statement in the order of their
// messages.
struct EventColumns {
  std::vector<std::string> type, address, category, campaign, detail;
  std::vector<std::int64_t> message;

  void add(const char* t, const NewMessage& m, MessageId id, std::string d) {
    type.emplace_back(t);
    address.push_back(m.recipient);
    message.push_back(id);
    category.push_back(m.category);
    campaign.push_back(m.campaign);
    detail.push_back(std::move(d));
  }
  void insert(pg::Connection& c, const std::string& source, UnixMillis now) const {
    if (message.empty()) return;
    c.exec(
        "INSERT INTO events (at, type, address, message, category, campaign, source, detail) "
        "SELECT $1, t, a, m, c, k, $2, d FROM unnest($3::text[], $4::text[], $5::bigint[], "
        "$6::text[], $7::text[], $8::text[]) AS e (t, a, m, c, k, d) ORDER BY m",
        pg::Params()
            .add(now)
            .add(source)
            .add_array(type)
            .add_array(address)
            .add_array(message)
            .add_array(category)
            .add_array(campaign)
            .add_array(detail));
  }
};

void hold_campaign(pg::Connection& c, const std::string& name, UnixMillis now) {
  for (;;) {
    c.run("store_insert_campaign", pg::Params().add(name).add("").add(now));
    if (!c.run("store_share_campaign", pg::Params().add(name)).empty()) return;
  }
}

Campaign read_campaign_row(const pg::Result& r, int row) {
  Campaign c;
  c.name = r.string(row, 0);
  c.origin = r.string(row, 1);
  c.created_at = r.int64(row, 2);
  c.paused_at = r.optional_int64(row, 3);
  c.pause_reason = r.string_or_empty(row, 4);
  c.last_activity = c.created_at;
  c.resumed_at = r.optional_int64(row, 5);
  return c;
}

}  // namespace

PostgresStore::PostgresStore(const std::string& conninfo, PostgresOpen open) : c_(conninfo) {
  if (open == PostgresOpen::create) {
    migrate_postgres_schema(c_);
  } else {
    require_current_postgres_schema(c_);
  }
  prepare_store_statements();
  prepare_dispatch_statements();
  prepare_feedback_statements();
}

PostgresStore::~PostgresStore() = default;

int PostgresStore::schema_version() { return postgres_schema_version(); }

// The statements run for every message enqueued, every suppression looked up or stored.
void PostgresStore::prepare_store_statements() {
  c_.prepare("store_insert_event",
             "INSERT INTO events (at, type, address, message, category, campaign, source, "
             "detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id");
  c_.prepare("store_notify_suppression", "SELECT pg_notify($1, $2)");
  c_.prepare("store_lock_suppression_events", pgsql::kSuppressionEventsLock);
  // The address's own suppression first (all mail before its category), else its forgotten key's:
  // both in one round trip.
  c_.prepare("store_find_suppression",
             std::string(kSuppressionColumns) +
                 "WHERE address IN ($1, $3) AND category IN ('', $2) ORDER BY address = $1 DESC, "
                 "category LIMIT 1");
  // FOR UPDATE: every caller changes or deletes the row next, judging by what it read.
  c_.prepare("store_exact_suppression",
             std::string(kSuppressionColumns) + "WHERE address = $1 AND category = $2 FOR UPDATE");
  c_.prepare("store_insert_suppression",
             "INSERT INTO suppressions (address, category, reason, source, created_at) VALUES "
             "($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING");
  c_.prepare("store_lock_address", kLockAddress);
  c_.prepare("store_lock_address_shared", kLockAddressShared);
  c_.prepare("store_forgotten_since",
             "SELECT EXISTS (SELECT 1 FROM suppressions WHERE address = $1) AND NOT EXISTS "
             "(SELECT 1 FROM suppressions WHERE address = $2) AND NOT EXISTS (SELECT 1 FROM "
             "messages WHERE recipient = $2)");
  c_.prepare("store_insert_campaign",
             "INSERT INTO campaigns (name, origin, created_at) VALUES ($1, $2, $3) "
             "ON CONFLICT DO NOTHING");
  c_.prepare("store_share_campaign", kShareCampaign);
  // ON CONFLICT waits for another process inserting the same campaign and recipient; once that
  // commits, this stores nothing: one message, and the second caller is told already_queued.
  c_.prepare("store_insert_message",
             "INSERT INTO messages (campaign, category, recipient, vars, state, next_attempt_at, "
             "created_at, updated_at) VALUES ($1::text, $2, $3, $4, $5, $6::bigint + " +
                 paused_shift("$1::text") +
                 ", $6, $6) ON CONFLICT (campaign, recipient) DO NOTHING RETURNING id");
  c_.prepare("store_update_vars",
             "UPDATE messages SET vars = $1, updated_at = $2 WHERE campaign = $3 AND "
             "recipient = $4 AND state IN ('queued', 'deferred', 'failed') "
             "RETURNING id, category");
  c_.prepare("store_message_held", "SELECT 1 FROM messages WHERE campaign = $1 AND recipient = $2");
}

void PostgresStore::add_event(UnixMillis at, const char* type, const std::string& address,
                              std::optional<MessageId> message, const std::string& category,
                              const std::string& campaign, const std::string& source,
                              const std::string& detail) {
  insert_event(c_, at, type, address, message, category, campaign, source, detail);
}

std::optional<Suppression> PostgresStore::find_suppression(const std::string& address,
                                                           const std::string& category) {
  // A forgotten key is looked up as itself only.
  bool is_key = address.rfind(kForgottenKeyPrefix, 0) == 0;
  pg::Result r = c_.run("store_find_suppression", pg::Params().add(address).add(category).add(
                                                      is_key ? address : forgotten_key(address)));
  if (r.empty()) return std::nullopt;
  return pgsql::read_suppression(r, 0);
}

std::optional<Suppression> PostgresStore::exact_suppression(const std::string& address,
                                                            const std::string& category) {
  pg::Result r = c_.run("store_exact_suppression", pg::Params().add(address).add(category));
  if (r.empty()) return std::nullopt;
  return pgsql::read_suppression(r, 0);
}

std::vector<EnqueueResult> PostgresStore::enqueue(std::span<const NewMessage> messages,
                                                  const std::string& source, UnixMillis now) {
  // A batch in a few round trips whatever its size: the messages go in by COPY to a table of the
  // session's own, then every step is one statement over all of them.
  std::vector<EnqueueResult> results(messages.size(), {EnqueueStatus::already_queued, 0});
  if (messages.empty()) return results;
  pg::Transaction tx(c_);
  copy_batch(messages);
  lock_batch(messages, now);
  StoppedInBatch stopped = stopped_in_batch(messages, source, now, results);
  store_batch(messages, stopped, source, now, results);
  tx.commit();
  return results;
}

void PostgresStore::copy_batch(std::span<const NewMessage> messages) {
  c_.exec(
      "CREATE TEMP TABLE IF NOT EXISTS enqueue_batch (n integer PRIMARY KEY, campaign text, "
      "category text NOT NULL, recipient text NOT NULL, vars text NOT NULL, key text NOT NULL) "
      "ON COMMIT DELETE ROWS");
  // Each address's forgotten key (its salt read from the database once), before the COPY holds
  // the connection.
  std::vector<std::string> keys;
  keys.reserve(messages.size());
  for (const NewMessage& m : messages) keys.push_back(forgotten_key(m.recipient));
  std::size_t next = 0;
  c_.copy_in("COPY enqueue_batch (n, campaign, category, recipient, vars, key) FROM STDIN",
             [&](std::string& out) {
               for (int rows = 0; next < messages.size() && rows < 1000; ++next, ++rows) {
                 const NewMessage& m = messages[next];
                 out += std::to_string(next) + '\t';
                 out += m.campaign.empty() ? std::string("\\N") : pg::copy_text(m.campaign);
                 out += '\t' + pg::copy_text(m.category) + '\t' + pg::copy_text(m.recipient) +
                        '\t' + pg::copy_text(m.vars_json) + '\t' + pg::copy_text(keys[next]) + '\n';
               }
               return next < messages.size();
             });
}

void PostgresStore::lock_batch(std::span<const NewMessage> messages, UnixMillis now) {
  // The campaigns first, one by one (most often there is one), by name so that two batches
  // naming the same new campaigns never wait for each other: created if new, held FOR SHARE.
  std::vector<std::string> held;
  for (const NewMessage& m : messages) {
    if (!m.campaign.empty()) held.push_back(m.campaign);
  }
  std::sort(held.begin(), held.end());
  held.erase(std::unique(held.begin(), held.end()), held.end());
  for (const std::string& name : held) hold_campaign(c_, name, now);
  // Each address's lock, shared (in one order, so that two imports never deadlock): a forget of
  // the address (which holds it exclusive) waits for this batch to commit and then erases its
  // messages, or commits first and the statement after this one finds the suppression under the
  // forgotten key; never a message left in clear behind a forget.
  //
  // And each campaign's lock, exclusive, in the order of the locks themselves: two imports into
  // one campaign take turns, batch by batch, where waiting on each other's rows (ON CONFLICT
  // in store_batch, in the batch's order) could deadlock.
  c_.exec(
      "SELECT count(pg_advisory_xact_lock_shared(1718579815, h)) FROM (SELECT DISTINCT "
      "hashtext(recipient) & 1023 AS h FROM enqueue_batch ORDER BY h) r; "
      "SELECT count(pg_advisory_xact_lock(1718579816, h)) FROM (SELECT DISTINCT "
      "hashtext(campaign) AS h FROM enqueue_batch WHERE campaign IS NOT NULL ORDER BY h) r");
}

PostgresStore::StoppedInBatch PostgresStore::stopped_in_batch(std::span<const NewMessage> messages,
                                                              const std::string& source,
                                                              UnixMillis now,
                                                              std::vector<EnqueueResult>& results) {
  // What stops each message, found the way find_suppression() finds it (all-mail first).
  pg::Result r = c_.exec(
      "SELECT b.n, s.address, s.category, s.reason, s.source, s.created_at FROM enqueue_batch b "
      "CROSS JOIN LATERAL (SELECT address, category, reason, source, created_at FROM "
      "suppressions WHERE address IN (b.recipient, b.key) AND category IN ('', b.category) "
      "ORDER BY address = b.recipient DESC, category LIMIT 1) s ORDER BY b.n");
  StoppedInBatch stopped;
  stopped.forgotten.assign(messages.size(), false);
  for (int row = 0; row < r.rows(); ++row) {
    auto n = static_cast<std::size_t>(r.int64(row, 0));
    Suppression sup = pgsql::read_suppression(r, row, 1);
    const NewMessage& m = messages[n];
    results[n] = {EnqueueStatus::suppressed, 0};
    if (sup.address != m.recipient) {
      // The person asked to be forgotten: their address is stored nowhere, not even here.
      add_event(now, "suppressed", sup.address, std::nullopt, m.category, m.campaign, source,
                "not queued (" + suppression_summary(sup) + ")");
      stopped.forgotten[n] = true;
      stopped.forgotten_n.push_back(std::to_string(n));
    } else {
      stopped.suppressed_n.push_back(std::to_string(n));
      stopped.details.push_back("suppressed when queued (" + suppression_summary(sup) + ")");
    }
  }
  return stopped;
}

void PostgresStore::store_batch(std::span<const NewMessage> messages, const StoppedInBatch& stopped,
                                const std::string& source, UnixMillis now,
                                std::vector<EnqueueResult>& results) {
  // The rest in one statement, in the batch's order (the order they are sent in): a campaign's
  // recipient it holds already is left out (ON CONFLICT), the first of a pair in the batch stored.
  pg::Result stored = c_.exec(
      "INSERT INTO messages (campaign, category, recipient, vars, state, next_attempt_at, "
      "created_at, updated_at) SELECT b.campaign, b.category, b.recipient, b.vars, CASE WHEN b.n "
      "= ANY($1::text[]::integer[]) THEN 'suppressed' ELSE 'queued' END, $3::bigint + " +
          paused_shift("b.campaign") +
          ", $3, $3 FROM enqueue_batch b WHERE b.n <> ALL($2::text[]::integer[]) ORDER BY b.n "
          "ON CONFLICT (campaign, recipient) DO NOTHING RETURNING id, campaign IS NULL, "
          "coalesce(campaign, ''), recipient",
      pg::Params().add_array(stopped.suppressed_n).add_array(stopped.forgotten_n).add(now));
  // Ids come from the sequence as the rows go in: in the batch's order.
  std::unordered_map<std::string, MessageId> by_campaign;  // campaign NUL recipient -> id
  std::vector<MessageId> no_campaign;
  for (int r = 0; r < stored.rows(); ++r) {
    if (stored.boolean(r, 1)) {
      no_campaign.push_back(stored.int64(r, 0));
    } else {
      by_campaign.emplace(stored.string(r, 2) + '\0' + stored.string(r, 3), stored.int64(r, 0));
    }
  }
  std::sort(no_campaign.begin(), no_campaign.end());
  // Each message stored gets its event; one not stored stays already_queued.
  EventColumns events;
  std::size_t next_plain = 0, detail = 0;
  for (std::size_t n = 0; n < messages.size(); ++n) {
    const NewMessage& m = messages[n];
    if (stopped.forgotten[n]) continue;
    bool suppressed = results[n].status == EnqueueStatus::suppressed;
    std::string sup_detail = suppressed ? stopped.details[detail++] : std::string();
    std::optional<MessageId> id;
    if (m.campaign.empty()) {
      if (next_plain < no_campaign.size()) id = no_campaign[next_plain++];
    } else if (auto it = by_campaign.find(m.campaign + '\0' + m.recipient);
               it != by_campaign.end()) {
      id = it->second;
      by_campaign.erase(it);  // a second one in the batch was not stored
    }
    if (!id) {
      results[n] = {EnqueueStatus::already_queued, 0};  // its campaign holds it already
      continue;
    }
    results[n] = {suppressed ? EnqueueStatus::suppressed : EnqueueStatus::queued, *id};
    events.add(suppressed ? "suppressed" : "enqueued", m, *id, std::move(sup_detail));
  }
  events.insert(c_, source, now);
}

std::vector<UpdateStatus> PostgresStore::update_vars(std::span<const NewMessage> messages,
                                                     const std::string& source, UnixMillis now) {
  std::vector<UpdateStatus> results;
  results.reserve(messages.size());
  pg::Transaction tx(c_);
  for (const NewMessage& m : messages) {
    // One UPDATE checks the state and changes the row: a claim at the same moment either waits
    // and sends the new variables, or leases the message first and leaves it not_waiting.
    pg::Result updated =
        c_.run("store_update_vars",
               pg::Params().add(m.vars_json).add(now).add_or_null(m.campaign).add(m.recipient));
    if (!updated.empty()) {
      add_event(now, "vars-updated", m.recipient, updated.int64(0, 0), updated.string(0, 1),
                m.campaign, source, "template variables replaced by a corrected import");
      results.push_back(UpdateStatus::updated);
      continue;
    }
    pg::Result held =
        c_.run("store_message_held", pg::Params().add_or_null(m.campaign).add(m.recipient));
    results.push_back(held.empty() ? UpdateStatus::not_found : UpdateStatus::not_waiting);
  }
  tx.commit();
  return results;
}

StateCounts PostgresStore::counts(const std::optional<std::string>& campaign) {
  pg::Result r =
      campaign ? c_.exec("SELECT state, count(*) FROM messages WHERE campaign = $1 GROUP BY state",
                         pg::Params().add(*campaign))
               : c_.exec("SELECT state, count(*) FROM messages GROUP BY state");
  StateCounts c;
  for (int i = 0; i < r.rows(); ++i) {
    if (auto s = parse_message_state(r.text(i, 0))) c[*s] = r.int64(i, 1);
  }
  return c;
}

std::vector<SuppressOutcome> PostgresStore::suppress(std::span<const Suppression> suppressions,
                                                     UnixMillis now) {
  std::vector<SuppressOutcome> outcomes;
  outcomes.reserve(suppressions.size());
  pg::Transaction tx(c_);
  // An opt-out waits for the disk: if a daemon's session turned synchronous_commit off for its
  // queue writes, this transaction turns it on again (any stronger setting is left as it is).
  c_.exec(
      "SELECT set_config('synchronous_commit', 'on', true) "
      "WHERE current_setting('synchronous_commit') = 'off'");
  for (const Suppression& given : suppressions) {
    outcomes.push_back(suppress_one(given, now, std::nullopt, ""));
  }
  tx.commit();
  return outcomes;
}

SuppressOutcome PostgresStore::suppress_one(const Suppression& given, UnixMillis now,
                                            std::optional<MessageId> message,
                                            const std::string& campaign) {
  Suppression s = under_forgotten_key(given);
  if (s.created_at == 0) s.created_at = now;
  std::string reason(to_string(s.reason));
  std::string scope = s.category.empty() ? " (all mail)" : "";
  std::optional<Suppression> existing;
  // ON CONFLICT: another process storing the same suppression at once makes this one find it,
  // never fail. The row found is then locked FOR UPDATE (exact_suppression) before it is raised;
  // if a lift deleted it in between, the person's request is stored anew.
  while (!existing) {
    pg::Result inserted = c_.run(
        "store_insert_suppression",
        pg::Params().add(s.address).add(s.category).add(reason).add(s.source).add(s.created_at));
    if (inserted.affected() > 0) {
      announce_suppression_change(c_, insert_event(c_, now, "suppression-added", s.address, message,
                                                   s.category, campaign, s.source, reason + scope));
      return SuppressOutcome::added;
    }
    if (!is_recipient_choice(s.reason)) {
      return SuppressOutcome::unchanged;  // its first record stays the evidence
    }
    // The person's own request, for a suppression that exists: never lost behind it.
    existing = exact_suppression(s.address, s.category);
  }
  if (stronger_reason(s.reason, existing->reason)) {
    c_.exec("UPDATE suppressions SET reason = $1, source = $2 WHERE address = $3 AND category = $4",
            pg::Params().add(reason).add(s.source).add(s.address).add(s.category));
    announce_suppression_change(
        c_, insert_event(
                c_, now, "suppression-added", s.address, message, s.category, campaign, s.source,
                reason + scope + ", raised from " + std::string(to_string(existing->reason)) +
                    " (suppressed since " + format_iso8601(existing->created_at) + ")"));
    return SuppressOutcome::raised;
  }
  add_event(now, "suppression-requested", s.address, message, s.category, campaign, s.source,
            reason + scope + ": already suppressed (" + std::string(to_string(existing->reason)) +
                " since " + format_iso8601(existing->created_at) + ")");
  return SuppressOutcome::recorded;
}

Suppression PostgresStore::under_forgotten_key(const Suppression& s) {
  if (s.address.rfind(kForgottenKeyPrefix, 0) == 0) return s;
  // Held until the caller's transaction ends, with the suppression stored: see kLockAddress.
  c_.run("store_lock_address", pg::Params().add(s.address));
  std::string key = forgotten_key(s.address);
  pg::Result r = c_.run("store_forgotten_since", pg::Params().add(key).add(s.address));
  if (!r.boolean(0, 0)) return s;
  Suppression keyed = s;
  keyed.address = std::move(key);
  return keyed;
}

LiftResult PostgresStore::unsuppress(const std::string& address_given, const std::string& category,
                                     const std::string& source, UnixMillis now,
                                     bool consent_given) {
  pg::Transaction tx(c_);
  // exact_suppression locks the row: a person opting out again at this moment (which raises the
  // reason) either waits for the lift, or commits first and is seen here.
  std::string address = address_given;
  auto existing = exact_suppression(address, category);
  if (!existing) {  // a forgotten address's, kept (and lifted, and recorded) under its hash
    address = forgotten_key(address_given);
    existing = exact_suppression(address, category);
  }
  if (!existing) return {LiftStatus::not_found, std::nullopt};
  if (is_recipient_choice(existing->reason) && !consent_given)
    return {LiftStatus::needs_consent, existing};
  c_.exec("DELETE FROM suppressions WHERE address = $1 AND category = $2",
          pg::Params().add(address).add(category));
  announce_suppression_change(
      c_, insert_event(c_, now, "suppression-removed", address, std::nullopt, category, "", source,
                       "lifted " + std::string(to_string(existing->reason)) +
                           (category.empty() ? " (all mail)" : "")));
  tx.commit();
  return {LiftStatus::lifted, existing};
}

void PostgresStore::for_each_suppression(const std::function<void(const Suppression&)>& fn) {
  // A cursor, read a batch at a time: the whole list is never in memory. COLLATE "C" orders by
  // bytes, as SQLite does, whatever the database's locale.
  pg::Transaction tx(c_);
  c_.exec("DECLARE store_suppressions NO SCROLL CURSOR FOR " + std::string(kSuppressionColumns) +
          "ORDER BY address COLLATE \"C\", category COLLATE \"C\"");
  const std::string fetch =
      "FETCH " + std::to_string(kSuppressionBatch) + " FROM store_suppressions";
  for (;;) {
    pg::Result r = c_.exec(fetch);
    for (int i = 0; i < r.rows(); ++i) fn(pgsql::read_suppression(r, i));
    if (r.rows() < kSuppressionBatch) break;
  }
  tx.commit();
}

std::vector<Event> PostgresStore::history(const std::string& address) {
  pg::Result r = c_.exec(
      "SELECT id, at, type, address, message, category, campaign, source, detail FROM "
      "events WHERE address IN ($1, $2) ORDER BY id",
      pg::Params().add(address).add(forgotten_key(address)));
  std::vector<Event> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    Event e;
    e.id = r.int64(i, 0);
    e.at = r.int64(i, 1);
    e.type = r.string(i, 2);
    e.address = r.string(i, 3);
    e.message = r.optional_int64(i, 4);
    e.category = r.string(i, 5);
    e.campaign = r.string(i, 6);
    e.source = r.string(i, 7);
    e.detail = r.string(i, 8);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<Campaign> PostgresStore::read_campaigns(const std::optional<std::string>& name) {
  std::vector<Campaign> out;
  const std::string columns =
      "SELECT name, origin, created_at, paused_at, pause_reason, resumed_at FROM campaigns ";
  pg::Result rows = name ? c_.exec(columns + "WHERE name = $1", pg::Params().add(*name))
                         : c_.exec(columns + "ORDER BY created_at, name COLLATE \"C\"");
  for (int i = 0; i < rows.rows(); ++i) out.push_back(read_campaign_row(rows, i));
  if (out.empty()) return out;
  // Counts, feedback and the newest change, from the (campaign, state, feedback) index.
  const std::string grouped =
      "SELECT campaign, state, feedback, count(*), max(updated_at) FROM messages ";
  pg::Result counts =
      name ? c_.exec(grouped + "WHERE campaign = $1 GROUP BY campaign, state, feedback",
                     pg::Params().add(*name))
           : c_.exec(grouped + "WHERE campaign IS NOT NULL GROUP BY campaign, state, feedback");
  std::unordered_map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < out.size(); ++i) index.emplace(out[i].name, i);
  for (int i = 0; i < counts.rows(); ++i) {
    auto it = index.find(counts.string(i, 0));
    if (it == index.end()) continue;  // messages of a campaign row not there (none: migrated)
    Campaign& c = out[it->second];
    auto state = parse_message_state(counts.text(i, 1));
    std::int64_t n = counts.int64(i, 3);
    if (state) {
      c.counts[*state] += n;
      add_feedback(c.feedback, *state, counts.string_or_empty(i, 2), n);
    }
    c.last_activity = std::max<UnixMillis>(c.last_activity, counts.int64(i, 4));
  }
  for (Campaign& c : out) {
    c.feedback_since_resume = c.resumed_at ? feedback_since(c.name, *c.resumed_at) : c.feedback;
  }
  return out;
}

CampaignFeedback PostgresStore::feedback_since(const std::string& campaign, UnixMillis since) {
  // A message's updated_at is when it was answered (sent or failed): a bounce or complaint that
  // comes later leaves it, so a late report about a message sent before `since` is not counted.
  CampaignFeedback f;
  pg::Result r = c_.exec(
      "SELECT state, feedback, count(*) FROM messages WHERE campaign = $1 AND updated_at >= $2 "
      "GROUP BY state, feedback",
      pg::Params().add(campaign).add(since));
  for (int i = 0; i < r.rows(); ++i) {
    if (auto state = parse_message_state(r.text(i, 0))) {
      add_feedback(f, *state, r.string_or_empty(i, 1), r.int64(i, 2));
    }
  }
  return f;
}

Campaign PostgresStore::open_campaign(const std::string& name, const std::string& origin,
                                      UnixMillis now) {
  pg::Transaction tx(c_);
  std::vector<Campaign> found;
  // A drop_campaign_if_empty elsewhere may delete the row between the insert and the read (the
  // insert found it and did nothing): then it is created anew, as for a name not seen before.
  while (found.empty()) {
    c_.run("store_insert_campaign", pg::Params().add(name).add(origin).add(now));
    found = read_campaigns(name);
  }
  tx.commit();
  return std::move(found.front());
}

std::optional<Campaign> PostgresStore::campaign(const std::string& name) {
  // One snapshot for the row and its counts.
  pg::Transaction tx(c_, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  auto found = read_campaigns(name);
  tx.commit();
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

bool PostgresStore::drop_campaign_if_empty(const std::string& name) {
  pg::Transaction tx(c_);
  // Locked first: an enqueue holding the row (kShareCampaign) is waited for, and the check below,
  // a statement of its own, then sees the messages it committed.
  if (c_.exec("SELECT 1 FROM campaigns WHERE name = $1 FOR UPDATE", pg::Params().add(name))
          .empty()) {
    return false;
  }
  pg::Result dropped = c_.exec(
      "DELETE FROM campaigns WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM messages WHERE "
      "campaign = $1)",
      pg::Params().add(name));
  tx.commit();
  return dropped.affected() > 0;
}

std::vector<Campaign> PostgresStore::campaigns() {
  pg::Transaction tx(c_, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  auto all = read_campaigns(std::nullopt);
  tx.commit();
  return all;
}

std::optional<std::int64_t> PostgresStore::set_campaign_paused(const std::string& name, bool paused,
                                                               UnixMillis now) {
  pg::Transaction tx(c_);
  // FOR UPDATE: two people pausing and resuming at once act one after the other, each on what
  // the other left; and enqueues holding the row (kShareCampaign) finish first, so their
  // messages are shifted too.
  pg::Result known =
      c_.exec("SELECT paused_at IS NOT NULL FROM campaigns WHERE name = $1 FOR UPDATE",
              pg::Params().add(name));
  if (known.empty()) return std::nullopt;
  if (known.boolean(0, 0) == paused) return 0;  // already as asked
  // Resuming: the automatic pause judges what is answered from now on.
  c_.exec(paused ? "UPDATE campaigns SET paused_at = $1 WHERE name = $2"
                 : "UPDATE campaigns SET paused_at = NULL, pause_reason = NULL, resumed_at = $1 "
                   "WHERE name = $2",
          pg::Params().add(now).add(name));
  std::int64_t n = shift_campaign(name, paused);
  tx.commit();
  return n;
}

std::int64_t PostgresStore::shift_campaign(const std::string& name, bool hold) {
  pg::Result shifted =
      c_.exec(hold ? "UPDATE messages SET next_attempt_at = next_attempt_at + $1 WHERE "
                     "campaign = $2 AND state IN ('queued', 'deferred') AND next_attempt_at < $1"
                   : "UPDATE messages SET next_attempt_at = next_attempt_at - $1 WHERE "
                     "campaign = $2 AND state IN ('queued', 'deferred') AND next_attempt_at >= $1",
              pg::Params().add(kPausedOffset).add(name));
  return shifted.affected();
}

std::int64_t PostgresStore::cancel_campaign(const std::string& campaign, const std::string& source,
                                            UnixMillis now) {
  pg::Transaction tx(c_);
  // One statement changes the messages and writes their events, in id order: a campaign of a
  // million messages is one round trip, not a million.
  pg::Result r = c_.exec(
      "WITH cancelled AS (UPDATE messages SET state = 'cancelled', updated_at = $1::bigint "
      "WHERE campaign = $2::text AND state IN ('queued', 'deferred') "
      "RETURNING id, recipient, category) "
      "INSERT INTO events (at, type, address, message, category, campaign, source, detail) "
      "SELECT $1::bigint, 'cancelled', recipient, id, category, $2::text, $3::text, '' "
      "FROM cancelled ORDER BY id",
      pg::Params().add(now).add(campaign).add(source));
  tx.commit();
  return r.affected();
}

std::int64_t PostgresStore::retry_campaign(const std::string& campaign, const std::string& source,
                                           UnixMillis now) {
  pg::Transaction tx(c_);
  // The campaign's row held first (kShareCampaign): a pause at this moment waits, then holds the
  // retried messages back, rather than committing unseen while they are made due now.
  c_.run("store_share_campaign", pg::Params().add(campaign));
  // As in cancel_campaign, the messages and their events in one statement.
  pg::Result r = c_.exec(
      "WITH requeued AS (UPDATE messages SET state = 'queued', attempts = 0, next_attempt_at = "
      "$1::bigint + " +
          paused_shift("$2::text") +
          ", updated_at = $1::bigint WHERE campaign = $2::text AND state IN ('failed', "
          "'deferred') RETURNING id, recipient, category) "
          "INSERT INTO events (at, type, address, message, category, campaign, source, detail) "
          "SELECT $1::bigint, 'requeued', recipient, id, category, $2::text, $3::text, '' "
          "FROM requeued ORDER BY id",
      pg::Params().add(now).add(campaign).add(source));
  tx.commit();
  return r.affected();
}

}  // namespace bulkmail
