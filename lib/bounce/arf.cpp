#include "bounce/arf.h"

#include <algorithm>
#include <string>

#include "base/text.h"
#include "bounce/bounded_text.h"
#include "bounce/field_block.h"
#include "bounce/report_fill.h"

namespace bulkmail::bounce {
namespace {

constexpr std::size_t kMaxReportedDomains = 16;

}  // namespace

void read_arf(std::string_view body, const ReportLimits& limits, Report& r) {
  r.kind = ReportKind::complaint;
  for (const FieldBlock& block : read_field_blocks(body, 4)) {
    for (const Field& f : block) {
      if (f.name == "feedback-type") {
        set_once(r.feedback_type, clean(to_lower_ascii(first_word(f.value)), 64));
      } else if (f.name == "user-agent") {
        set_once(r.user_agent, clean(f.value));
      } else if (f.name == "version") {
        set_once(r.version, clean(f.value, 64));
      } else if (f.name == "original-mail-from") {
        set_once(r.original_mail_from, clean(unbracket(f.value), kMaxAddress));
      } else if (f.name == "original-rcpt-to") {
        if (r.original_rcpt_to.size() < limits.max_recipients)
          r.original_rcpt_to.push_back(clean(unbracket(f.value), kMaxAddress));
      } else if (f.name == "arrival-date" || f.name == "received-date") {
        set_once(r.arrival_date, clean(f.value));
      } else if (f.name == "reporting-mta") {
        set_once(r.reporting_mta, clean(strip_type(f.value)));
      } else if (f.name == "source-ip") {
        set_once(r.source_ip, clean(f.value, 64));
      } else if (f.name == "reported-domain") {
        if (r.reported_domains.size() < kMaxReportedDomains)
          r.reported_domains.push_back(clean(f.value, 255));
      }
    }
  }
  r.rcpt_redacted = std::any_of(r.original_rcpt_to.begin(), r.original_rcpt_to.end(),
                                [](const std::string& a) { return looks_redacted(a); });
}

}  // namespace bulkmail::bounce

namespace bulkmail {

bool complaint_suppresses(std::string_view feedback_type) {
  std::string t = to_lower_ascii(trim(feedback_type));
  return t == "abuse" || t == "fraud" || t == "virus";
}

bool looks_redacted(std::string_view address) {
  address = bounce::unbracket(address);
  std::string local = to_lower_ascii(address.substr(0, address.rfind('@')));
  if (local.empty() || local.find("redacted") != std::string::npos) return true;
  if (std::all_of(local.begin(), local.end(), [](char c) { return c == 'x' || c == '*'; }))
    return true;
  return local.size() >= 16 &&
         std::all_of(local.begin(), local.end(), [](char c) { return bounce::hex_value(c) >= 0; });
}

}  // namespace bulkmail
