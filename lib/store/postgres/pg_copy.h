// Moving up from one machine: everything a SQLite database holds copied into an empty PostgreSQL
// database (`bulkmailctl store copy`): messages in every state with their variables, suppressions
// with their original evidence, the whole event log, campaigns, the dispatcher's state, soft-bounce
// runs, the digests of reports taken in, the feedback counters, and the salt that forgotten
// addresses are kept under (so that a forgotten person's suppressions still match).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/postgres/pg_connection.h"

namespace bulkmail {

// Rows copied, table by table, in the order they were copied.
using CopyCounts = std::vector<std::pair<std::string, std::int64_t>>;

// Copies the SQLite database at `sqlite_path` (a bulkmail database at this build's schema, which
// the caller has checked; no daemon may be writing it) into the PostgreSQL database `to` connects
// to, creating its tables first. One transaction on each side: a consistent snapshot read from
// SQLite, all of it or nothing written to PostgreSQL. Throws std::runtime_error, naming the
// table, when `to` already holds data (nothing is written), and when the counts on both sides
// differ at the end (nothing is kept).
CopyCounts copy_sqlite_to_postgres(const std::string& sqlite_path, pg::Connection& to);

}  // namespace bulkmail
