// Bounce and complaint reports: anyone who can send mail to the bounce address writes this input.
//
// Properties: any bytes give a report or an error, never an exception or a crash, within the
// limits' bounds; every text the report hands on (to the store, the history, the logs) is valid
// UTF-8 on one line and a few KiB at most; a bounce names a failed recipient, a delay a delayed
// one and no failed one; only a complaint has a feedback type, and names no recipient but its
// Original-Rcpt-To.
#include <string>

#include "base/text.h"
#include "bounce/report.h"
#include "fuzz_check.h"

using namespace bulkmail;

namespace {

void check_text(std::string_view s) {
  FUZZ_CHECK(is_valid_utf8(s));
  FUZZ_CHECK(!fuzz::has_line_break(s));
  FUZZ_CHECK(s.size() <= 16 * 1024);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  ReportLimits limits;
  auto parsed = parse_report(fuzz::text(data, size), limits);
  if (!parsed) return 0;
  const Report& r = parsed.value();
  FUZZ_CHECK(r.recipients.size() <= limits.max_recipients);
  FUZZ_CHECK(r.original_rcpt_to.size() <= limits.max_recipients);
  bool failed = false, delayed = false;
  for (const ReportRecipient& rcpt : r.recipients) {
    for (std::string_view s :
         {std::string_view(rcpt.address), std::string_view(rcpt.action),
          std::string_view(rcpt.status), std::string_view(rcpt.diagnostic),
          std::string_view(rcpt.remote_mta), std::string_view(rcpt.original_recipient)})
      check_text(s);
    // A DSN may leave out Action: its Status says then (5.x.x failed, 4.x.x delayed).
    char status = rcpt.status.empty() ? ' ' : rcpt.status.front();
    failed = failed || rcpt.action == "failed" || (rcpt.action.empty() && status == '5');
    delayed = delayed || rcpt.action == "delayed" || (rcpt.action.empty() && status == '4');
    FUZZ_CHECK(rcpt.smtp_code == 0 || (rcpt.smtp_code >= 200 && rcpt.smtp_code <= 599));
  }
  if (r.kind == ReportKind::bounce) FUZZ_CHECK(failed);
  if (r.kind == ReportKind::delay) FUZZ_CHECK(delayed && !failed);
  if (r.kind != ReportKind::complaint) FUZZ_CHECK(r.feedback_type.empty());
  if (r.kind == ReportKind::complaint) FUZZ_CHECK(r.recipients.empty());
  for (const auto* list : {&r.original_rcpt_to, &r.reported_domains, &r.original.list_unsubscribe})
    for (const std::string& s : *list) check_text(s);
  for (std::string_view s :
       {std::string_view(r.reporting_mta), std::string_view(r.feedback_type),
        std::string_view(r.original_mail_from), std::string_view(r.original.message_id),
        std::string_view(r.original.return_path), std::string_view(r.original.to),
        std::string_view(r.original.from), std::string_view(r.original.subject),
        std::string_view(r.original.list_id), std::string_view(r.note),
        std::string_view(r.user_agent), std::string_view(r.version),
        std::string_view(r.arrival_date), std::string_view(r.source_ip)})
    check_text(s);
  return 0;
}
