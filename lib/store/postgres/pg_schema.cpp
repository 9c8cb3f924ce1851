#include "store/postgres/pg_schema.h"

#include <openssl/rand.h>

#include <iterator>
#include <stdexcept>
#include <string>

namespace bulkmail {
namespace {

// The advisory lock the migration holds: "bulkmail" in ASCII, as a bigint.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7094929213580683628)";

// Each entry takes the schema from version i to i+1. Never edit a released step: add one.
constexpr const char* kMigrations[] = {
    // 1: what SQLite's schema holds at its version 5. Times are Unix milliseconds (bigint), as in
    // SQLite; ids come from sequences, which never hand out an id twice, so a deleted message's id
    // is never taken by a new one that events would then seem to name.
    //
    // A paused campaign's waiting messages are due only after kPausedOffset (2^60 ms), exactly
    // as in SQLite (pg_store.cpp, paused_shift).
    R"sql(
CREATE TABLE messages (
  id               bigserial PRIMARY KEY,
  campaign         text,                      -- NULL: not part of a campaign
  category         text    NOT NULL,
  recipient        text    NOT NULL,          -- normalized address
  vars             text    NOT NULL DEFAULT '{}' CHECK (vars::jsonb IS NOT NULL),
  state            text    NOT NULL CHECK (state IN
                     ('queued','sending','deferred','sent','bounced','complained','failed',
                      'suppressed','cancelled')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint  NOT NULL,          -- Unix ms
  lease_owner      text,
  lease_expires_at bigint,                    -- Unix ms
  last_reply_code  integer,
  last_reply       text,
  message_id       text,                      -- RFC 5322 Message-ID once composed
  created_at       bigint  NOT NULL,
  updated_at       bigint  NOT NULL,
  feedback         text    CHECK (feedback IN ('hard','soft','policy','complaint'))
);
-- Within one campaign an address is queued at most once.
CREATE UNIQUE INDEX messages_campaign_recipient ON messages (campaign, recipient);
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE state IN ('queued','deferred');
CREATE INDEX messages_leased ON messages (lease_expires_at) WHERE state = 'sending';
CREATE INDEX messages_recipient ON messages (recipient);
CREATE INDEX messages_campaign_state ON messages (campaign, state, feedback);
CREATE INDEX messages_sent_at ON messages (updated_at)
  WHERE state IN ('sent','bounced','complained');
CREATE INDEX messages_message_id ON messages (message_id) WHERE message_id IS NOT NULL;

CREATE TABLE suppressions (
  address    text    NOT NULL,                -- normalized address, or a forgotten key
  category   text    NOT NULL,                -- '' suppresses all mail
  reason     text    NOT NULL CHECK (reason IN
               ('unsubscribe','hard-bounce','soft-bounce','complaint','manual','import')),
  source     text    NOT NULL,
  created_at bigint  NOT NULL,
  PRIMARY KEY (address, category)
);

CREATE TABLE events (
  id         bigserial PRIMARY KEY,
  at         bigint  NOT NULL,
  type       text    NOT NULL,
  address    text    NOT NULL,
  message    bigint,
  category   text    NOT NULL DEFAULT '',
  campaign   text    NOT NULL DEFAULT '',
  source     text    NOT NULL DEFAULT '',
  detail     text    NOT NULL DEFAULT ''
);
CREATE INDEX events_address ON events (address, id);
CREATE INDEX events_lifted ON events (at) WHERE type = 'suppression-removed';

-- The event log is evidence that opt-outs were honoured: never changed, and the evidence of a
-- suppression in force never deleted. The types are kSuppressionEvidenceEvents (suppression.h).
CREATE FUNCTION events_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events are append-only';
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  FOR EACH ROW EXECUTE FUNCTION events_no_update();
CREATE FUNCTION events_keep_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.type IN ('suppression-added', 'suppression-requested', 'suppression-removed',
                  'forgotten')
     AND EXISTS (SELECT 1 FROM suppressions WHERE address = OLD.address) THEN
    RAISE EXCEPTION 'the evidence of a suppression in force is kept';
  END IF;
  RETURN OLD;
END $$;
CREATE TRIGGER events_keep_evidence BEFORE DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION events_keep_evidence();

CREATE TABLE dispatch_state (
  id             integer PRIMARY KEY CHECK (id = 1),
  state          text    NOT NULL,          -- running, paused, stopped
  detail         text    NOT NULL DEFAULT '',
  updated_at     bigint  NOT NULL,
  config_problem text    NOT NULL DEFAULT ''
);

CREATE TABLE campaigns (
  name         text    PRIMARY KEY,
  origin       text    NOT NULL DEFAULT '', -- the file an import took the name from; '' if none
  created_at   bigint  NOT NULL,
  paused_at    bigint,                      -- NULL: not paused
  pause_reason text,                        -- NULL: paused by a person, or not paused
  resumed_at   bigint                       -- NULL: never resumed by a person
);

CREATE TABLE meta (
  key   text  PRIMARY KEY,
  value bytea NOT NULL
);
-- The salt of forgotten addresses' keys (32 random bytes) is inserted with this step.

CREATE TABLE soft_bounces (
  address       text    PRIMARY KEY,        -- normalized, or a forgotten key
  count         integer NOT NULL,           -- soft bounces in the run
  first_at      bigint  NOT NULL,           -- when the run's first was reported
  last_message  bigint  NOT NULL,           -- the message the run's latest was about
  last_sent_at  bigint  NOT NULL            -- when that message was sent
);

CREATE TABLE received_reports (
  digest bytea   PRIMARY KEY,               -- SHA-256 of the report and the addresses it came to
  at     bigint  NOT NULL
);
CREATE INDEX received_reports_at ON received_reports (at);

CREATE TABLE feedback_counters (
  name  text    PRIMARY KEY,                -- "report:bounce", "class:hard", "unmatched", ...
  count bigint  NOT NULL
);
)sql",
    // 2: the throttle shared by every daemon (store/cluster_quota.h, pg_quota.cpp), and each
    // daemon's own state for `status`.
    //
    // A rate is a GCRA row: the theoretical arrival time of the next token, on the server's clock
    // (the one clock the daemons share). bulkmail_take_tokens takes up to `want` tokens of each
    // key in one call, the rows locked in key order so that two daemons never deadlock.
    R"sql(
CREATE TABLE throttle_rates (
  key    text   PRIMARY KEY,               -- "global", "domain:example.com"
  tat_us bigint NOT NULL                   -- Unix microseconds, server clock
);
CREATE TABLE throttle_days (
  day  bigint PRIMARY KEY,                 -- days since 1970-01-01, UTC
  used bigint NOT NULL                     -- places under the daily limit taken by any daemon
);
CREATE TABLE daemons (
  owner   text   PRIMARY KEY,              -- host:pid:random, as on its leases
  state   text   NOT NULL,                 -- running, paused, stopped
  detail  text   NOT NULL DEFAULT '',
  since   bigint NOT NULL,                 -- Unix ms: when it said so
  seen_at bigint NOT NULL                  -- Unix ms: its last heartbeat
);

CREATE FUNCTION bulkmail_take_tokens(p_keys text[], p_rates float8[], p_bursts float8[],
                                     p_wants integer[],
                                     OUT o_index integer, OUT o_granted integer,
                                     OUT o_wait_us bigint)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
  now_us bigint := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
  i integer;
  t float8;        -- microseconds between tokens
  tol float8;      -- how far ahead of now the arrival time may run: the burst
  tat bigint;
  base bigint;
BEGIN
  FOR i IN SELECT s FROM generate_subscripts(p_keys, 1) s ORDER BY p_keys[s] LOOP
    t := 1000000.0 / p_rates[i];
    tol := p_bursts[i] * t;
    INSERT INTO throttle_rates (key, tat_us) VALUES (p_keys[i], 0) ON CONFLICT (key) DO NOTHING;
    SELECT r.tat_us INTO tat FROM throttle_rates r WHERE r.key = p_keys[i] FOR UPDATE;
    base := greatest(tat, now_us);
    o_index := i;
    o_granted := least(p_wants[i], greatest(0, floor((now_us + tol - base) / t) + 1))::integer;
    IF o_granted > 0 THEN
      UPDATE throttle_rates SET tat_us = base + ceil(o_granted * t)::bigint
        WHERE key = p_keys[i];
      o_wait_us := 0;
    ELSE
      o_wait_us := greatest(1, ceil(base - tol - now_us))::bigint;
    END IF;
    RETURN NEXT;
  END LOOP;
END $$;

CREATE FUNCTION bulkmail_take_daily(p_day bigint, p_limit bigint, p_want bigint, p_start bigint,
                                    OUT o_granted bigint, OUT o_used bigint)
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO throttle_days (day, used) VALUES (p_day, p_start) ON CONFLICT (day) DO NOTHING;
  SELECT d.used INTO o_used FROM throttle_days d WHERE d.day = p_day FOR UPDATE;
  o_granted := greatest(0, least(p_want, p_limit - o_used));
  o_used := o_used + o_granted;
  UPDATE throttle_days SET used = o_used WHERE day = p_day;
  DELETE FROM throttle_days WHERE day < p_day - 7;
END $$;
)sql",
    // 3: retries that are due, found without walking the backlog (sqlite_schema.cpp, 6). Built
    // in the migration's transaction: on a large queue the daemons' writes wait while it builds
    // (about a second per million messages), which the upgrade's first start takes in stride.
    R"sql(
CREATE INDEX messages_retry_due ON messages (next_attempt_at, id) WHERE state = 'deferred';
)sql",
};

constexpr int kVersion = static_cast<int>(std::size(kMigrations));

// The database's version: 0 for an empty one. Throws for what no bulkmail of this build may touch.
int checked_version(pg::Connection& c) {
  pg::Result has = c.exec(
      "SELECT to_regclass('schema_version') IS NOT NULL, "
      "(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())");
  int version = 0;
  if (has.boolean(0, 0)) {
    pg::Result v = c.exec("SELECT version FROM schema_version");
    version = v.empty() ? 0 : static_cast<int>(v.int64(0, 0));
  } else if (has.int64(0, 1) > 0) {
    throw std::runtime_error("the database holds tables but is not a bulkmail database");
  }
  if (version > kVersion) {
    throw std::runtime_error("database schema version " + std::to_string(version) +
                             " is newer than this bulkmail understands (" +
                             std::to_string(kVersion) + "); upgrade bulkmail");
  }
  return version;
}

}  // namespace

int postgres_schema_version() { return kVersion; }

void migrate_postgres_schema(pg::Connection& c) {
  for (;;) {
    pg::Transaction tx(c);
    c.exec(kMigrationLock);  // held until this step commits: the others wait here
    int version = checked_version(c);
    if (version >= kVersion) break;  // done, by us or by another daemon meanwhile
    c.exec(kMigrations[version]);
    if (version == 0) {
      c.exec("CREATE TABLE schema_version (version integer NOT NULL)");
      c.exec("INSERT INTO schema_version (version) VALUES (1)");
      // From OpenSSL's generator here, not pgcrypto's on the server: no extension to install.
      unsigned char salt[32];
      if (RAND_bytes(salt, sizeof salt) != 1) throw std::runtime_error("RAND_bytes failed");
      c.exec("INSERT INTO meta (key, value) VALUES ('forget_salt', $1)",
             pg::Params().add_bytes(
                 std::string_view(reinterpret_cast<const char*>(salt), sizeof salt)));
    } else {
      c.exec("UPDATE schema_version SET version = " + std::to_string(version + 1));
    }
    tx.commit();
  }
}

void require_current_postgres_schema(pg::Connection& c) {
  int version = checked_version(c);
  if (version == 0) {
    throw std::runtime_error(
        "the database is empty, not yet a bulkmail database; create its tables with "
        "`bulkmaild --check`");
  }
  if (version < kVersion) {
    throw std::runtime_error("database schema version " + std::to_string(version) +
                             " is older than this bulkmail (" + std::to_string(kVersion) +
                             "); `bulkmaild --check` (or starting bulkmaild) migrates it");
  }
}

}  // namespace bulkmail
