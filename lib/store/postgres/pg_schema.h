// The PostgreSQL schema and its forward migrations, versioned in the table schema_version. The
// first version is the shape SQLite's schema reached at its version 5 (sqlite_schema.cpp), in
// PostgreSQL's types; later steps are added, never edited.
#pragma once

#include "store/postgres/pg_connection.h"

namespace bulkmail {

// The schema version this build writes.
int postgres_schema_version();

// Brings the database up to postgres_schema_version(), one transaction per step, each under a
// transaction-level advisory lock: daemons started at the same moment migrate once, the others
// waiting and then finding it done. Throws when the database is newer than this build, or holds
// tables but is not bulkmail's.
void migrate_postgres_schema(pg::Connection& c);

// Throws, saying what to run, unless the database is bulkmail's at exactly this build's version.
// For programs that must not create or migrate a database (bulkmailctl).
void require_current_postgres_schema(pg::Connection& c);

}  // namespace bulkmail
