#include "sqlite_schema.h"

#include <SQLiteCpp/Transaction.h>

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
};

constexpr int kVersion = static_cast<int>(std::size(kMigrations));

}  // namespace

int sqlite_schema_version() { return kVersion; }

void migrate_sqlite_schema(SQLite::Database& db) {
  int version = db.execAndGet("PRAGMA user_version").getInt();
  if (version == 0 && db.execAndGet("SELECT count(*) FROM sqlite_master").getInt() > 0) {
    throw std::runtime_error("the file holds tables but is not a bulkmail database");
  }
  if (version > kVersion) {
    throw std::runtime_error("database schema version " + std::to_string(version) +
                             " is newer than this bulkmail understands (" +
                             std::to_string(kVersion) + "); upgrade bulkmail");
  }
  while (version < kVersion) {
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
