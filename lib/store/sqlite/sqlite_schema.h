// The SQLite schema and its forward migrations, versioned with PRAGMA user_version.
#pragma once

#include <SQLiteCpp/Database.h>

namespace bulkmail {

// The schema version this build writes.
int sqlite_schema_version();

// Brings `db` up to sqlite_schema_version(), one transaction per step. Throws when the database is
// newer than this build (a downgrade would lose data). `to_version` stops earlier: for the tests
// that build a database as an older bulkmail left it.
void migrate_sqlite_schema(SQLite::Database& db, int to_version = sqlite_schema_version());

// Throws, saying what to run, unless `db` is a bulkmail database at exactly this build's version.
// For programs that must not create or migrate a database (bulkmailctl).
void require_current_sqlite_schema(SQLite::Database& db);

}  // namespace bulkmail
