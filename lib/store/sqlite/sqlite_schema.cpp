#include "store/sqlite/sqlite_schema.h"

#include <SQLiteCpp/Transaction.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace bulkmail {
namespace {

// Each entry takes the schema from version i to i+1. Never edit a released step: add one.
constexpr const char* kMigrations[] = {
    // 1: messages, suppressions, the append-only event log.
    R"sql(
CREATE TABLE messages (
  id               INTEGER PRIMARY KEY,
  campaign         TEXT,                      -- NULL: not part of a campaign
  category         TEXT    NOT NULL,
  recipient        TEXT    NOT NULL,          -- normalized address
  vars             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(vars)),
  state            TEXT    NOT NULL CHECK (state IN
                     ('queued','sending','deferred','sent','failed','suppressed','cancelled')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,          -- Unix ms
  lease_owner      TEXT,
  lease_expires_at INTEGER,                   -- Unix ms
  last_reply_code  INTEGER,
  last_reply       TEXT,
  message_id       TEXT,                      -- RFC 5322 Message-ID once composed
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
-- Within one campaign an address is queued at most once.
CREATE UNIQUE INDEX messages_campaign_recipient ON messages (campaign, recipient);
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE state IN ('queued','deferred');
CREATE INDEX messages_leased ON messages (lease_expires_at) WHERE state = 'sending';
CREATE INDEX messages_recipient ON messages (recipient);
CREATE INDEX messages_campaign_state ON messages (campaign, state);

CREATE TABLE suppressions (
  address    TEXT    NOT NULL,                -- normalized address
  category   TEXT    NOT NULL,                -- '' suppresses all mail
  reason     TEXT    NOT NULL CHECK (reason IN
               ('unsubscribe','hard-bounce','complaint','manual','import')),
  source     TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (address, category)
) WITHOUT ROWID;

CREATE TABLE events (
  id         INTEGER PRIMARY KEY,
  at         INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  address    TEXT    NOT NULL,
  message    INTEGER,
  category   TEXT    NOT NULL DEFAULT '',
  campaign   TEXT    NOT NULL DEFAULT '',
  source     TEXT    NOT NULL DEFAULT '',
  detail     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_address ON events (address, id);
-- The event log is evidence that opt-outs were honoured: it only ever grows.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
)sql",
    // 2: what the daemon is doing (for `status`), and sent messages by time (the daily limit).
    R"sql(
CREATE TABLE dispatch_state (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  state      TEXT    NOT NULL,               -- running, paused, stopped
  detail     TEXT    NOT NULL DEFAULT '',
  updated_at INTEGER NOT NULL
);
CREATE INDEX messages_sent_at ON messages (updated_at) WHERE state = 'sent';
)sql",
    // 3: campaigns as things of their own, and a failed config reload made visible.
    //
    // Campaigns: where a campaign's name came from (an import refuses
    // to add a different file to a campaign its file name happens to match), when it began, and
    // whether it is paused.
    //
    // A paused campaign's waiting messages keep their state and order but are due only after
    // kPausedOffset (2^60 ms, past any real time), so the claim never sees them and needs no test
    // of its own. Whatever becomes due while paused (a new message, a deferral, a recovered lease,
    // a retry) is held back the same way by the statement that makes it wait (sqlite_store.cpp,
    // paused_shift: an expression, far cheaper per row than a trigger on the delivery path);
    // resuming subtracts the offset.
    R"sql(
CREATE TABLE campaigns (
  name       TEXT    PRIMARY KEY,
  origin     TEXT    NOT NULL DEFAULT '',   -- the file an import took the name from; '' if none
  created_at INTEGER NOT NULL,
  paused_at  INTEGER                        -- NULL: not paused
) WITHOUT ROWID;
INSERT INTO campaigns (name, created_at)
  SELECT campaign, min(created_at) FROM messages WHERE campaign IS NOT NULL GROUP BY campaign;

-- Set while the daemon runs on an older config because the file on disk failed to reload.
ALTER TABLE dispatch_state ADD COLUMN config_problem TEXT NOT NULL DEFAULT '';

)sql",
    // 4: personal data has a lifetime. Finished messages and old events may be deleted
    // (retention.message_days, retention.event_days, `bulkmailctl forget`), but never the evidence
    // of a suppression in force: the events that record it being made, asked for again, lifted or
    // forgotten, while a suppression of that address exists. The salt keys the hash a forgotten
    // address's suppressions are kept under. Messages are rebuilt with AUTOINCREMENT: once rows
    // are deleted, a new message must never take the id of one that events still name.
    // events_keep_evidence names the types of kSuppressionEvidenceEvents (suppression.h), which
    // the code uses everywhere else; tests/sqlite_store_test.cpp checks that the two agree.
    R"sql(
CREATE TABLE messages_new (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign         TEXT,
  category         TEXT    NOT NULL,
  recipient        TEXT    NOT NULL,
  vars             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(vars)),
  state            TEXT    NOT NULL CHECK (state IN
                     ('queued','sending','deferred','sent','failed','suppressed','cancelled')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  last_reply_code  INTEGER,
  last_reply       TEXT,
  message_id       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
INSERT INTO messages_new SELECT * FROM messages;
-- Never below the newest id any event names, even of a message deleted before this step.
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'messages_new', coalesce(max(message), 0) FROM events
  WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages_new');
UPDATE sqlite_sequence SET seq = max(seq, (SELECT coalesce(max(message), 0) FROM events))
  WHERE name = 'messages_new';
DROP TABLE messages;  -- and its indexes and triggers, made again below
ALTER TABLE messages_new RENAME TO messages;
CREATE UNIQUE INDEX messages_campaign_recipient ON messages (campaign, recipient);
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE state IN ('queued','deferred');
CREATE INDEX messages_leased ON messages (lease_expires_at) WHERE state = 'sending';
CREATE INDEX messages_recipient ON messages (recipient);
CREATE INDEX messages_campaign_state ON messages (campaign, state);
CREATE INDEX messages_sent_at ON messages (updated_at) WHERE state = 'sent';

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('forget_salt', randomblob(32));

DROP TRIGGER events_no_delete;
CREATE TRIGGER events_keep_evidence BEFORE DELETE ON events
  WHEN OLD.type IN ('suppression-added', 'suppression-requested', 'suppression-removed',
                    'forgotten')
   AND EXISTS (SELECT 1 FROM suppressions WHERE address = OLD.address)
  BEGIN SELECT RAISE(ABORT, 'the evidence of a suppression in force is kept'); END;

-- Retention walks messages and events in id order (no index of their own: one on the delivery
-- path cost about a third more store work per message), and finds the evidence of lifted
-- suppressions from the lifts, which are few.
CREATE INDEX events_lifted ON events (at) WHERE type = 'suppression-removed';
)sql",
    // 5: what comes back by mail after the relay said 250 (issue 15). Messages gain the states
    // `bounced` and `complained` and a `feedback` column: the strongest thing a report or the
    // SMTP reply said of the message (hard, soft, policy, complaint), which the campaign's rates
    // count through the (campaign, state, feedback) index. A bounce or a complaint leaves
    // updated_at as it was, the time the message was sent: the daily limit and retention go on
    // counting from there. Suppressions gain the reason `soft-bounce`. Both tables are rebuilt
    // for their CHECKs (SQLite cannot alter one); events_keep_evidence is dropped around the
    // rebuild of the table it reads and made again word for word.
    //
    // soft_bounces: each address's run of soft bounces, until it is suppressed or a delivery
    // between two of them ends the run. received_reports: the SHA-256 of every report taken in,
    // so that one delivered twice (an MTA retrying after a timeout, a maildir run again after a
    // crash) counts once. feedback_counters: reports by kind and class, unmatched ones and forged
    // tokens, for /metrics (bulkmailctl takes the reports in, the daemon serves the figures).
    // Campaigns: why a campaign paused itself, and when a person last resumed it (the automatic
    // pause then judges only the messages answered after that).
    R"sql(
CREATE TABLE messages_new (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign         TEXT,
  category         TEXT    NOT NULL,
  recipient        TEXT    NOT NULL,
  vars             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(vars)),
  state            TEXT    NOT NULL CHECK (state IN
                     ('queued','sending','deferred','sent','bounced','complained','failed',
                      'suppressed','cancelled')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  last_reply_code  INTEGER,
  last_reply       TEXT,
  message_id       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  feedback         TEXT    CHECK (feedback IN ('hard','soft','policy','complaint'))
);
INSERT INTO messages_new (id, campaign, category, recipient, vars, state, attempts,
                          next_attempt_at, lease_owner, lease_expires_at, last_reply_code,
                          last_reply, message_id, created_at, updated_at)
  SELECT id, campaign, category, recipient, vars, state, attempts, next_attempt_at, lease_owner,
         lease_expires_at, last_reply_code, last_reply, message_id, created_at, updated_at
  FROM messages;
-- The id sequence goes on where it was, so no new message takes an id events still name.
INSERT INTO sqlite_sequence (name, seq)
  SELECT 'messages_new', seq FROM sqlite_sequence WHERE name = 'messages';
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE UNIQUE INDEX messages_campaign_recipient ON messages (campaign, recipient);
CREATE INDEX messages_due ON messages (next_attempt_at, id) WHERE state IN ('queued','deferred');
CREATE INDEX messages_leased ON messages (lease_expires_at) WHERE state = 'sending';
CREATE INDEX messages_recipient ON messages (recipient);
CREATE INDEX messages_campaign_state ON messages (campaign, state, feedback);
CREATE INDEX messages_sent_at ON messages (updated_at)
  WHERE state IN ('sent','bounced','complained');
-- A report that returns the original's headers names it by its Message-ID.
CREATE INDEX messages_message_id ON messages (message_id) WHERE message_id IS NOT NULL;

DROP TRIGGER events_keep_evidence;
CREATE TABLE suppressions_new (
  address    TEXT    NOT NULL,
  category   TEXT    NOT NULL,
  reason     TEXT    NOT NULL CHECK (reason IN
               ('unsubscribe','hard-bounce','soft-bounce','complaint','manual','import')),
  source     TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (address, category)
) WITHOUT ROWID;
INSERT INTO suppressions_new SELECT address, category, reason, source, created_at
  FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_new RENAME TO suppressions;
CREATE TRIGGER events_keep_evidence BEFORE DELETE ON events
  WHEN OLD.type IN ('suppression-added', 'suppression-requested', 'suppression-removed',
                    'forgotten')
   AND EXISTS (SELECT 1 FROM suppressions WHERE address = OLD.address)
  BEGIN SELECT RAISE(ABORT, 'the evidence of a suppression in force is kept'); END;

CREATE TABLE soft_bounces (
  address       TEXT    PRIMARY KEY,   -- normalized, or a forgotten key
  count         INTEGER NOT NULL,      -- soft bounces in the run
  first_at      INTEGER NOT NULL,      -- when the run's first was reported
  last_message  INTEGER NOT NULL,      -- the message the run's latest was about
  last_sent_at  INTEGER NOT NULL       -- when that message was sent
) WITHOUT ROWID;

CREATE TABLE received_reports (
  digest BLOB    PRIMARY KEY,          -- SHA-256 of the report and the addresses it came to
  at     INTEGER NOT NULL
) WITHOUT ROWID;
-- Retention deletes them with the events (retention.event_days).
CREATE INDEX received_reports_at ON received_reports (at);

CREATE TABLE feedback_counters (
  name  TEXT    PRIMARY KEY,           -- "report:bounce", "class:hard", "unmatched", ...
  count INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE campaigns ADD COLUMN pause_reason TEXT;  -- NULL: paused by a person, or not paused
ALTER TABLE campaigns ADD COLUMN resumed_at INTEGER;  -- NULL: never resumed by a person
)sql",
    // 6: retries that are due, found without walking the backlog. A campaign's messages are all
    // due from its import on, so in due order a retry waited behind every one of them (an hour
    // behind a million at the soak's pace); the claim takes its first quarter from these.
    R"sql(
CREATE INDEX messages_retry_due ON messages (next_attempt_at, id) WHERE state = 'deferred';
)sql",
};

constexpr int kVersion = static_cast<int>(std::size(kMigrations));

// The database's version, after refusing what no bulkmail of this build may touch.
int checked_version(SQLite::Database& db) {
  int version = db.execAndGet("PRAGMA user_version").getInt();
  if (version == 0 && db.execAndGet("SELECT count(*) FROM sqlite_master").getInt() > 0) {
    throw std::runtime_error("the file holds tables but is not a bulkmail database");
  }
  if (version > kVersion) {
    throw std::runtime_error("database schema version " + std::to_string(version) +
                             " is newer than this bulkmail understands (" +
                             std::to_string(kVersion) + "); upgrade bulkmail");
  }
  return version;
}

}  // namespace

int sqlite_schema_version() { return kVersion; }

void require_current_sqlite_schema(SQLite::Database& db) {
  int version = checked_version(db);
  if (version == 0) {
    throw std::runtime_error(
        "the file is empty, not yet a bulkmail database; create it with "
        "`bulkmaild --check`");
  }
  if (version < kVersion) {
    throw std::runtime_error("database schema version " + std::to_string(version) +
                             " is older than this bulkmail (" + std::to_string(kVersion) +
                             "); `bulkmaild --check` (or starting bulkmaild) migrates it");
  }
}

void migrate_sqlite_schema(SQLite::Database& db, int to_version) {
  int version = checked_version(db);
  while (version < std::min(to_version, kVersion)) {
    // IMMEDIATE: two processes opening a new database at once must not both migrate it.
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    int current = db.execAndGet("PRAGMA user_version").getInt();
    if (current != version) {  // another process migrated meanwhile
      version = current;
      continue;
    }
    db.exec(kMigrations[version]);
    ++version;
    db.exec("PRAGMA user_version = " + std::to_string(version));
    tx.commit();
  }
}

}  // namespace bulkmail
