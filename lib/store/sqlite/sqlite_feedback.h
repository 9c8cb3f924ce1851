// The statements SqliteStore's feedback methods (sqlite_feedback.cpp) use, prepared on first use:
// most connections (every bulkmailctl command, the daemon's readers) never take in a report.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

namespace bulkmail {

struct SqliteFeedbackStatements {
  explicit SqliteFeedbackStatements(SQLite::Database& db);

  SQLite::Statement find_message;
  SQLite::Statement find_by_header;
  SQLite::Statement seen;
  SQLite::Statement count;
  SQLite::Statement update_message;
  SQLite::Statement soft_run;
  SQLite::Statement delivered_between;
  SQLite::Statement save_run;
  SQLite::Statement end_run;
  SQLite::Statement counted_before;
};

}  // namespace bulkmail
