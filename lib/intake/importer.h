// Bulk loading: the rows of a CSV or JSON Lines file become queued messages (or suppressions),
// validated row by row and written in large transactions. A bad row is rejected with its line
// number and reason; the good rows around it are still loaded. Every row read is counted once:
// queued + updated + already_queued + suppressed + rejected is the number of rows, unless `fatal`
// stopped the import.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "config/config.h"
#include "intake/record_reader.h"
#include "intake/submission.h"
#include "store/store.h"

namespace bulkmail {

struct ImportSummary {
  std::int64_t queued = 0;          // new messages (for suppressions: new suppressions)
  std::int64_t updated = 0;         // with `update`: messages not sent yet that took new variables
  std::int64_t already_queued = 0;  // the campaign already held the recipient (already suppressed)
  std::int64_t suppressed = 0;      // stored as suppressed: the recipient had opted out
  std::int64_t rejected = 0;        // rows refused, each reported through on_reject
  std::string fatal;                // non-empty: the file could not be read past a point
};

struct ImportOptions {
  std::size_t batch_size = 10000;  // rows per transaction: large enough to amortize the commit
  // Check every row and count what would happen, writing nothing: `queued` counts the rows that
  // would be queued (or suppressed, as `suppressed`, when the recipient is suppressed now); what
  // the campaign already holds is not looked at.
  bool dry_run = false;
  // A corrected file: a recipient the campaign already holds, not sent yet, takes the row's
  // variables (`updated`) instead of being skipped as already queued.
  bool update = false;
  std::function<void(std::size_t line, const std::string& reason)> on_reject;
  std::function<void(std::int64_t rows)> on_progress;  // called after each batch
};

// One row as a message for `category` in `campaign`: the `email` column is the recipient ("" when
// the row has none; the last one when it has several), every other column a template variable
// (the first one when a name repeats). The error names the first column whose name cannot be a
// variable's: "column 'First Name': ...".
Result<Submission> submission_from_row(const Row& row, const std::string& category,
                                       const std::string& campaign);

// Queues one message per row for `category` in `campaign`. The `email` column (or key) is the
// recipient; every other column becomes a template variable. Each row passes
// validate_submission(check, ...), so a row whose message could not be composed is rejected here,
// not failed at send time; a CSV whose columns cannot fill the template at all is refused once,
// as `fatal`.
ImportSummary import_messages(RowReader& rows, const ComposeCheck& check,
                              const std::string& category, const std::string& campaign,
                              Store& store, const std::string& source,
                              const ImportOptions& options);

// Adds one suppression per row: `email`, optional `category` (empty: all mail) and `reason`
// (default `import`). Other columns, such as an export's `source` and `created_at`, are ignored.
ImportSummary import_suppressions(RowReader& rows, const Config& config, Store& store,
                                  const std::string& source, const ImportOptions& options);

}  // namespace bulkmail
