#include "bounce/report_fill.h"

#include <utility>

#include "bounce/bounce_class.h"

namespace bulkmail::bounce {

void add_note(Report& r, std::string_view note) {
  if (!r.note.empty()) r.note += "; ";
  r.note += note;
}

void set_once(std::string& field, std::string value) {
  if (field.empty()) field = std::move(value);
}

void add_recipient(Report& r, const ReportLimits& limits, ReportRecipient x) {
  if (r.recipients.size() >= limits.max_recipients) {
    if (r.recipients.size() == limits.max_recipients &&
        r.note.find("recipients") == std::string::npos)
      add_note(r, "more than " + std::to_string(limits.max_recipients) +
                      " recipients: the rest were not read");
    return;
  }
  if (x.status.empty()) x.status = enhanced_status_in(x.diagnostic);
  x.smtp_code = smtp_code_in(x.diagnostic);
  x.bounce_class = classify_bounce(x.status, x.smtp_code, x.diagnostic, x.action);
  r.recipients.push_back(std::move(x));
}

ReportKind kind_of(const std::vector<ReportRecipient>& recipients) {
  bool failed = false, delayed = false;
  for (const ReportRecipient& x : recipients) {
    bool permanent = x.action.empty() && !x.status.empty() && x.status[0] == '5';
    bool transient = x.action.empty() && !x.status.empty() && x.status[0] == '4';
    failed = failed || x.action == "failed" || permanent;
    delayed = delayed || x.action == "delayed" || transient;
  }
  return failed ? ReportKind::bounce : delayed ? ReportKind::delay : ReportKind::unknown;
}

}  // namespace bulkmail::bounce
