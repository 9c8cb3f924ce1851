#include "intake/importer.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include "base/address.h"
#include "base/text.h"
#include "intake/submission.h"

namespace bulkmail {
namespace {

void reject(ImportSummary& sum, const ImportOptions& o, std::size_t line, const std::string& why) {
  ++sum.rejected;
  if (o.on_reject) o.on_reject(line, why);
}

// Reads every row, counting it in `seen`: a fatal error stops the import, a rejected row is
// reported, and each well-formed one goes to `fn`, which returns false to stop.
template <class Fn>
void for_each_row(RowReader& rows, ImportSummary& sum, const ImportOptions& o, std::int64_t& seen,
                  Fn&& fn) {
  while (auto row = rows.next()) {
    ++seen;
    if (!*row) {
      const std::string& why = row->error().message;
      if (rows.stopped()) {
        sum.fatal = "line " + std::to_string(rows.line()) + ": " + why;
        return;
      }
      reject(sum, o, rows.line(), why);
      continue;
    }
    if (!fn(**row)) return;
  }
}

// The lines of the batch being gathered, from its first row's to its last's.
struct BatchLines {
  std::size_t first = 0, last = 0;
  void add(std::size_t line) {
    if (first == 0) first = line;
    last = line;
  }
};

// A batch whose new rows were committed but whose second step, updating the rows the campaign
// already held (--update), failed.
struct PartlyWritten : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Writes a batch (or, for a dry run, looks it up). When the database fails (its disk full, say)
// the batch's transaction is rolled back and its counts with it: `fatal` names the batch's lines
// and the cause, and false stops the import there. What earlier batches wrote stays, so the same
// import again adds only the rest.
template <class Write>
bool write_or_stop(ImportSummary& sum, BatchLines& lines, bool dry_run, Write&& write) {
  BatchLines batch = std::exchange(lines, {});
  std::string where = "lines " + std::to_string(batch.first) + "-" + std::to_string(batch.last);
  ImportSummary before = sum;
  std::string stopped;
  try {
    write();
    return true;
  } catch (const PartlyWritten& e) {
    stopped = where + ": " + printable_line(e.what());
  } catch (const std::runtime_error& e) {
    sum = before;
    stopped = where +
              (dry_run ? ": the database could not be read ("
                       : ": the database could not "
                         "record them (") +
              printable_line(e.what()) +
              (dry_run ? "), so the dry run stopped"
                       : "), so their transaction was rolled back and the import stopped");
  }
  if (!dry_run) {
    stopped +=
        "; importing the same file again once the database can write adds only what is "
        "missing";
  }
  // A read error before this batch's last row stays the first thing said.
  sum.fatal = sum.fatal.empty() ? stopped : sum.fatal + "; then " + stopped;
  return false;
}

// Whether any row of a CSV file with these columns can be queued; the error says why none can.
// Every row has the header's columns, so a template variable none of them supplies fails them
// all: checked once, with a placeholder in each column, rather than rejecting each row for the
// same reason.
Result<void> check_columns(const ComposeCheck& check, const Submission& row) {
  Submission probe = row;
  probe.to = "postmaster@example.com";
  for (auto& [name, value] : probe.vars) value = "x";
  auto m = validate_submission(check.config(), probe);
  if (!m) return m.error();
  return check.check_composes(probe, *m);
}

// A dry run's batch, counted: each message would be queued, or stored as suppressed when its
// recipient is suppressed now.
void count_dry_run(Store& store, const std::vector<NewMessage>& batch, ImportSummary& sum) {
  for (const NewMessage& m : batch) {
    if (store.find_suppression(m.recipient, m.category)) {
      ++sum.suppressed;
    } else {
      ++sum.queued;
    }
  }
}

// Enqueues the batch and counts what became of each message. With `update`, the messages the
// campaign already holds take the batch's variables instead, unless sent or on their way already.
// Moves from `batch`.
void write_batch(Store& store, std::vector<NewMessage>& batch, const std::string& source,
                 bool update, ImportSummary& sum) {
  std::vector<NewMessage> held;  // rows for recipients the campaign already holds (update)
  auto results = store.enqueue(batch, source, now_millis());
  for (std::size_t i = 0; i < results.size(); ++i) {
    switch (results[i].status) {
      case EnqueueStatus::queued:
        ++sum.queued;
        break;
      case EnqueueStatus::already_queued:
        if (update) {
          held.push_back(std::move(batch[i]));
        } else {
          ++sum.already_queued;
        }
        break;
      case EnqueueStatus::suppressed:
        ++sum.suppressed;
        break;
    }
  }
  if (held.empty()) return;
  std::vector<UpdateStatus> updates;
  try {
    updates = store.update_vars(held, source, now_millis());
  } catch (const std::runtime_error& e) {
    throw PartlyWritten("the new rows were queued, but the " + std::to_string(held.size()) +
                        " the campaign already held were not updated: the database could not "
                        "record them (" +
                        e.what() + ")");
  }
  for (UpdateStatus u : updates) {
    if (u == UpdateStatus::updated) {
      ++sum.updated;
    } else {
      ++sum.already_queued;  // sent or on its way already: left as it was
    }
  }
}

}  // namespace

Result<Submission> submission_from_row(const Row& row, const std::string& category,
                                       const std::string& campaign) {
  Submission s{category, "", {}, campaign};
  for (const auto& [k, v] : row.fields) {
    if (k == "email") {
      s.to = v;
    } else if (auto named = check_var_name(k); !named) {
      return make_error("column '" + printable_line(k) + "': " + named.error().message);
    } else {
      s.vars.emplace(k, v);
    }
  }
  return s;
}

ImportSummary import_messages(RowReader& rows, const ComposeCheck& check,
                              const std::string& category, const std::string& campaign,
                              Store& store, const std::string& source,
                              const ImportOptions& options) {
  ImportSummary sum;
  std::vector<NewMessage> batch;
  batch.reserve(options.batch_size);
  std::int64_t seen = 0;
  bool columns_checked = false;
  BatchLines lines;
  auto flush = [&] {
    if (batch.empty()) return true;
    bool written = write_or_stop(sum, lines, options.dry_run, [&] {
      if (options.dry_run) {
        count_dry_run(store, batch, sum);
      } else {
        write_batch(store, batch, source, options.update, sum);
      }
    });
    batch.clear();
    if (written && options.on_progress) options.on_progress(seen);
    return written;
  };

  for_each_row(rows, sum, options, seen, [&](Row& row) {
    auto s = submission_from_row(row, category, campaign);
    if (!s) {
      if (rows.columns_from_header()) {
        // Every CSV row has the header's columns: refuse the file once, not each row.
        sum.fatal = "the header row's " + s.error().message;
        return false;
      }
      reject(sum, options, row.line, s.error().message);
      return true;
    }
    if (s->to.empty()) {
      reject(sum, options, row.line, "no email (the recipient column must be named 'email')");
      return true;
    }
    if (rows.columns_from_header() && !columns_checked) {
      columns_checked = true;
      if (auto usable = check_columns(check, *s); !usable) {
        sum.fatal = "no row can be queued: " + usable.error().message;
        return false;
      }
    }
    auto m = validate_submission(check, *s);
    if (!m) {
      reject(sum, options, row.line, m.error().message);
      return true;
    }
    batch.push_back(std::move(m.value()));
    lines.add(row.line);
    return batch.size() < options.batch_size || flush();
  });
  flush();
  return sum;
}

ImportSummary import_suppressions(RowReader& rows, const Config& config, Store& store,
                                  const std::string& source, const ImportOptions& options) {
  ImportSummary sum;
  std::vector<Suppression> batch;
  std::int64_t seen = 0;
  BatchLines lines;
  auto flush = [&] {
    if (batch.empty()) return true;
    bool written = write_or_stop(sum, lines, /*dry_run=*/false, [&] {
      for (SuppressOutcome o : store.suppress(batch, now_millis())) {
        // Raised: the row was a person's own opt-out over a weaker suppression; it changed it.
        if (o == SuppressOutcome::added || o == SuppressOutcome::raised) {
          ++sum.queued;
        } else {
          ++sum.already_queued;
        }
      }
    });
    batch.clear();
    if (written && options.on_progress) options.on_progress(seen);
    return written;
  };
  for_each_row(rows, sum, options, seen, [&](Row& row) {
    const std::string* email = row.field("email");
    if (!email || email->empty()) {
      reject(sum, options, row.line, "no email (the address column must be named 'email')");
      return true;
    }
    auto a = parse_address(*email);
    if (!a) {
      reject(sum, options, row.line, "email: " + a.error().message);
      return true;
    }
    Suppression s{a->str(), "", SuppressionReason::import, source, 0};
    if (const std::string* c = row.field("category"); c && !c->empty()) {
      if (!config.category(*c)) {
        reject(sum, options, row.line, "category: unknown category '" + printable_line(*c) + "'");
        return true;
      }
      s.category = *c;
    }
    if (const std::string* r = row.field("reason"); r && !r->empty()) {
      auto reason = parse_suppression_reason(*r);
      if (!reason) {
        reject(sum, options, row.line,
               "reason: '" + printable_line(*r) + "' is not one of " + suppression_reason_list());
        return true;
      }
      s.reason = *reason;
    }
    batch.push_back(std::move(s));
    lines.add(row.line);
    return batch.size() < options.batch_size || flush();
  });
  flush();
  return sum;
}

}  // namespace bulkmail
