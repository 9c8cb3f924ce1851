// What PostgresStore's files share (pg_store.cpp, pg_dispatch.cpp, pg_feedback.cpp): reading the
// rows several of them select, and the suppressions' channel. Internal to lib/store/postgres.
// paused_shift (store/paused_shift.h) is included for them.
#pragma once

#include <cstdint>
#include <string>

#include "store/paused_shift.h"
#include "store/postgres/pg_connection.h"
#include "store/suppression.h"

namespace bulkmail::pgsql {

// The columns "address, category, reason, source, created_at" of row `row`, from column `col`.
inline Suppression read_suppression(const pg::Result& r, int row, int col = 0) {
  Suppression s;
  s.address = r.string(row, col);
  s.category = r.string(row, col + 1);
  s.reason = parse_suppression_reason(r.string(row, col + 2)).value_or(SuppressionReason::manual);
  s.source = r.string(row, col + 3);
  s.created_at = r.int64(row, col + 4);
  return s;
}

// The order of suppression changes. Event ids come from a sequence when a row is written, so
// between daemons a lower id can commit after a higher one was read, and a watch that goes on
// from the higher one (Store::suppression_changes) would never see it. So a transaction takes
// this lock (exclusive, until it ends) before it writes a suppression-added or -removed event,
// and a reader of the changes takes it shared: while a reader holds it, every such event with an
// id below the newest it sees has committed, and any not yet written will take a higher id.
inline constexpr const char* kSuppressionEventsLock =
    "SELECT pg_advisory_xact_lock(7092374962093188470)";  // "bm-supev" in ASCII
inline constexpr const char* kSuppressionEventsReadLock =
    "SELECT pg_advisory_xact_lock_shared(7092374962093188470)";

// The channel every daemon LISTENs on for suppressions added or lifted (payload: the event id).
inline constexpr const char* kSuppressionChannel = "bulkmail_suppressions";

}  // namespace bulkmail::pgsql
