// Taking in a report that came back by mail: read it (bounce/report.h), find its message
// (report_match.h), decide what it asks of the store, and have the store do it. `bulkmailctl
// bounce receive` runs one report at a time from the MTA's pipe, or a Maildir's in batches.
//
// What a report asks, per recipient of a bounce or delay (by its class, bounce_class.h): hard ->
// a hard bounce, soft -> a soft bounce, policy -> a block, unknown -> nothing; for a complaint, by
// its Feedback-Type: abuse, fraud, virus -> a complaint, anything else -> a note. Only for a
// matched message, and only for a recipient that is the message's own (its Final-Recipient or
// Original-Recipient; a complaint's Original-Rcpt-To unless redacted). Auto-replies and reports
// not understood ask nothing and are not matched. Every report is counted for /metrics: by kind,
// its recipients by class, and how matching went when it did not match.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "bounce/report.h"
#include "config/config.h"
#include "feedback/report_match.h"
#include "store/feedback.h"
#include "store/store.h"

namespace bulkmail {

// One report, read and matched: what it asks of the store.
struct ReportPlan {
  Report report;
  Match match;
  ReceivedReport record;
  // Recipients the report names that are not the matched message's: an error, not an action.
  std::vector<std::string> mismatched;

  // The report names a message still being handed to the relay: not to be committed now, but
  // kept for a later try (MatchStatus::in_flight).
  bool retry_later() const { return match.status == MatchStatus::in_flight; }
};

// What the report asks, given what it was matched to. Pure.
ReportPlan plan_report(Report report, Match match, std::string digest, std::string source);

// One line for the log: what the report was, what it matched, and what it did ("bounce from
// mx.example.com (return path, message 42): hard 5.1.1 for pat@example.com: bounced, suppressed").
// Addresses in it are masked by the log, as every line's are.
std::string describe(const ReportPlan& plan, const ReportRecorded& recorded);

// The envelope recipients an MDA recorded at the top of `message`: each X-Original-To (the address
// as it arrived, before an alias rewrote it), then each Delivered-To; without <>, trimmed, at most
// 8. Reads only the first header block, and at most its first 64 KiB.
std::vector<std::string> envelope_recipients_in(std::string_view message);

class ReportIntake {
 public:
  // `source` names who takes the reports in, for the events:
  // "bounce-pipe", "bounce-maildir".
  ReportIntake(const Config& config, Store& store, std::string source);

  // Reads and matches one report (the store is read, not written). The error: the input is not a
  // mail message at all. The digest that makes a second delivery count once covers the message and
  // the addresses it came to.
  Result<ReportPlan> prepare(std::string_view message,
                             const std::vector<std::string>& envelope_recipients, UnixMillis now);

  // Has the store take in `plans` in one transaction; the results line up with them. Throws when
  // the database fails: then nothing of the batch was taken in. A plan to retry_later() must not be
  // given (std::invalid_argument).
  std::vector<ReportRecorded> commit(std::span<const ReportPlan> plans, UnixMillis now);

 private:
  Store& store_;
  std::string source_;
  TokenCodec tokens_;
  MatchKeys keys_;
  FeedbackPolicy policy_;
};

}  // namespace bulkmail
