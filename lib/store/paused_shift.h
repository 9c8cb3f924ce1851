// How a paused campaign's messages wait, in either backend's SQL: its waiting messages keep their
// state and order but are due only after kPausedOffset, so the claim never sees them and needs no
// test of its own (SQLite's schema step 3 explains the choice).
#pragma once

#include <cstdint>
#include <string>

namespace bulkmail {

// Past any real time in Unix ms (year 36 million).
inline constexpr std::int64_t kPausedOffset = std::int64_t{1} << 60;

// What a statement adds to the time a message becomes due: kPausedOffset when `campaign` (an SQL
// expression naming the message's campaign) is paused, else 0. Every statement that makes a
// message wait adds it: an insert, a deferral, a recovered lease, a retry. The same SQL for
// SQLite and PostgreSQL.
inline std::string paused_shift(const std::string& campaign) {
  return "(CASE WHEN " + campaign +
         " IS NOT NULL AND EXISTS (SELECT 1 FROM campaigns WHERE name = " + campaign +
         " AND paused_at IS NOT NULL) THEN " + std::to_string(kPausedOffset) + " ELSE 0 END)";
}

}  // namespace bulkmail
