#include "bounce/arf.h"

#include <algorithm>
#include <string>
#include <vector>

#include "base/text.h"
#include "bounce/bounded_text.h"
#include "bounce/dsn.h"
#include "bounce/field_block.h"
#include "bounce/report_fill.h"

namespace bulkmail::bounce {
namespace {

constexpr std::size_t kMaxReportedDomains = 16;
constexpr std::size_t kMaxRcptEntries = 64;  // entries of one Original-Rcpt-To looked at

// The entries of an address list, split at ',' and ';' outside quotes, comments and <>.
std::vector<std::string_view> split_list(std::string_view v) {
  std::vector<std::string_view> out;
  bool quoted = false;
  int angle = 0, comment = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= v.size() && out.size() < kMaxRcptEntries; ++i) {
    char c = i < v.size() ? v[i] : ',';
    if (quoted) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        quoted = false;
      if (i < v.size()) continue;
    }
    if (c == '"')
      quoted = true;
    else if (c == '(')
      ++comment;
    else if (c == ')' && comment > 0)
      --comment;
    else if (c == '<' && comment == 0)
      ++angle;
    else if (c == '>' && angle > 0)
      --angle;
    else if ((c == ',' || c == ';') && comment == 0 && angle == 0) {
      out.push_back(v.substr(start, std::min(i, v.size()) - start));
      start = i + 1;
    }
  }
  return out;
}

// One entry of Original-Rcpt-To as its addr-spec: "<a@x>", "Name <a@x>", "group: a@x" give
// "a@x"; what has no address gives the entry as it was, for is_one_address to refuse.
std::string_view entry_address(std::string_view e) {
  e = trim(e);
  std::size_t open = e.rfind('<');
  if (open != std::string_view::npos) {
    std::size_t close = e.find('>', open);
    return trim(e.substr(open + 1, close == std::string_view::npos ? close : close - open - 1));
  }
  // "undisclosed-recipients: a@x": the group's name goes.
  if (std::size_t colon = e.find(':');
      colon != std::string_view::npos && e.find('"') == std::string_view::npos)
    e = trim(e.substr(colon + 1));
  // A trailing comment: "a@x (Name)".
  if (std::size_t paren = e.find('('); paren != std::string_view::npos)
    e = trim(e.substr(0, paren));
  return e;
}

// Adds each address of an Original-Rcpt-To value; notes a redacted one in r.rcpt_redacted.
void add_rcpt_to(std::string_view value, const ReportLimits& limits, Report& r) {
  for (std::string_view e : split_list(value)) {
    std::string_view a = entry_address(e);
    if (a.find('@') != std::string_view::npos && looks_redacted(a)) r.rcpt_redacted = true;
    if (!is_one_address(a)) continue;
    if (r.original_rcpt_to.size() >= limits.max_recipients) return;
    r.original_rcpt_to.push_back(clean(a, kMaxAddress));
  }
}

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
        add_rcpt_to(f.value, limits, r);
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
  if (std::any_of(r.original_rcpt_to.begin(), r.original_rcpt_to.end(),
                  [](const std::string& a) { return looks_redacted(a); }))
    r.rcpt_redacted = true;
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
         std::all_of(local.begin(), local.end(), [](char c) { return hex_digit_value(c) >= 0; });
}

}  // namespace bulkmail
