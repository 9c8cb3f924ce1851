#include "bounce/text_notice.h"

#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "base/text.h"
#include "bounce/bounded_text.h"
#include "bounce/report_fill.h"

namespace bulkmail::bounce {
namespace {

constexpr std::size_t kMaxLine = 4 * 1024;      // bytes of one notice line looked at
constexpr std::size_t kMaxNoticeLines = 5'000;  // lines of a plain-text notice looked at

bool ends_with_ci(std::string_view s, std::string_view lower_suffix) {
  return s.size() >= lower_suffix.size() &&
         starts_with_ci(s.substr(s.size() - lower_suffix.size()), lower_suffix);
}

bool contains_ci(std::string_view s, std::string_view lower_needle) {
  return to_lower_ascii(s).find(lower_needle) != std::string::npos;
}

// An address as a notice writes it in its failure statement: local@domain with a dot in the
// domain, no white space, brackets or list punctuation.
bool is_address(std::string_view a) {
  if (a.size() < 3 || a.size() > 320) return false;
  std::size_t at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) return false;
  if (a.find('.', at) == std::string_view::npos) return false;
  for (char c : a) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' ||
        c == ';' || c == ':' || c == '[' || c == ']' || c == '|' || c == '/')
      return false;
  }
  return true;
}

using LineList = std::vector<std::string_view>;

LineList split_lines(std::string_view text) {
  LineList out;
  Lines lines(text);
  std::string_view line;
  while (out.size() < kMaxNoticeLines && lines.next(line)) out.push_back(line.substr(0, kMaxLine));
  return out;
}

// The text after the line `line` (a view into `text`): the copy of the message.
std::string_view after_line(std::string_view text, std::string_view line) {
  std::size_t end = text.find('\n', static_cast<std::size_t>(line.data() - text.data()));
  return end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
}

// The index of the first of lines [from, from + within) whose trimmed text starts with one of
// `lower_prefixes`, or lines.size().
std::size_t find_intro(const LineList& lines, std::size_t from, std::size_t within,
                       std::initializer_list<std::string_view> lower_prefixes) {
  for (std::size_t i = from; i < lines.size() && i < from + within; ++i) {
    for (std::string_view p : lower_prefixes)
      if (starts_with_ci(trim(lines[i]), p)) return i;
  }
  return lines.size();
}

// "mail.example.net" of "Hi. This is the qmail-send program at mail.example.net."
std::string host_after(std::string_view line, std::string_view lower_marker) {
  std::size_t at = to_lower_ascii(line).find(lower_marker);
  if (at == std::string::npos) return {};
  std::string_view host = first_word(line.substr(at + lower_marker.size()));
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return clean(host, 255);
}

// Collects one recipient of a notice: its address and the reason's lines.
class NoticeEntry {
 public:
  NoticeEntry(Report& r, const ReportLimits& limits, std::string action)
      : r_(r), limits_(limits), action_(std::move(action)) {}
  NoticeEntry(const NoticeEntry&) = delete;
  NoticeEntry& operator=(const NoticeEntry&) = delete;

  // Starts an entry; an `address` that is not one starts nothing, and its reason is dropped.
  void start(std::string_view address, std::string_view original = {}) {
    flush();
    address = unbracket(address);
    if (is_address(address)) {
      address_ = address;
      original_ = unbracket(original);
    }
  }
  void reason(std::string_view text) {
    if (!address_.empty()) append(reason_, text);
  }
  void set_action(std::string action) {
    flush();
    action_ = std::move(action);
  }
  void flush() {
    if (address_.empty()) return;
    ReportRecipient x;
    x.address = clean(address_, kMaxAddress);
    x.original_recipient = clean(original_, kMaxAddress);
    x.action = action_;
    x.diagnostic = clean(reason_);
    add_recipient(r_, limits_, std::move(x));
    address_.clear();
    original_.clear();
    reason_.clear();
  }

 private:
  Report& r_;
  const ReportLimits& limits_;
  std::string action_;
  std::string address_, original_, reason_;
};

// qmail-send, and the Yahoo notices built on it: "<a@example.com>:" then the reason's lines,
// until a blank line; the copy follows "--- Below this line is a copy of the message." or any
// other line starting with "---" ("--- Enclosed is a copy of the message.").
bool read_qmail(const LineList& lines, std::string_view text, const ReportLimits& limits, Report& r,
                std::string_view& copy) {
  std::size_t intro =
      find_intro(lines, 0, 20,
                 {"hi. this is the qmail-send program at ",
                  "sorry, we were unable to deliver your message to the following"});
  if (intro == lines.size()) return false;
  std::size_t before = r.recipients.size();
  NoticeEntry entry(r, limits, "failed");
  for (std::size_t i = intro + 1; i < lines.size(); ++i) {
    std::string_view t = trim(lines[i]);
    if (t.starts_with("---")) {
      copy = after_line(text, lines[i]);
      break;
    }
    if (t.size() > 3 && t.front() == '<' && t.ends_with(">:")) {
      entry.start(t.substr(1, t.size() - 3));
    } else if (t.empty()) {
      entry.flush();
    } else {
      entry.reason(t);
    }
  }
  entry.flush();
  if (r.recipients.size() == before) return false;
  set_once(r.reporting_mta, host_after(lines[intro], "program at "));
  return true;
}

// The line after an Exim notice's statement that introduces its list of addresses.
std::size_t exim_list_start(const LineList& lines, std::size_t from, std::string& action) {
  for (std::size_t i = from; i < lines.size() && i < from + 40; ++i) {
    std::string lower = to_lower_ascii(lines[i]);
    if (lower.find("could not be delivered to one or more of its") != std::string::npos)
      action = "failed";
    else if (lower.find("has not yet been delivered to one or more of its") != std::string::npos)
      action = "delayed";
    if (action.empty()) continue;
    for (std::size_t k = i; k < lines.size() && k < i + 12; ++k) {
      std::string_view t = trim(lines[k]);
      if (ends_with_ci(t, "failed:") || ends_with_ci(t, "delivered is:") ||
          ends_with_ci(t, "delivered are:"))
        return k + 1;
    }
    return lines.size();
  }
  return lines.size();
}

// Exim: "The following address(es) failed:" then, indented by two, each address, and indented
// by four its reason; the copy follows a "------ This is a copy of the message" line. Delay
// warnings say "has not yet been delivered" and list "The address ... is:".
bool read_exim(const LineList& lines, std::string_view text, const ReportLimits& limits, Report& r,
               std::string_view& copy) {
  std::size_t intro = find_intro(
      lines, 0, 10, {"this message was created automatically by mail delivery software"});
  if (intro == lines.size()) return false;
  std::string action;
  std::size_t start = exim_list_start(lines, intro + 1, action);
  if (start >= lines.size()) return false;
  std::size_t before = r.recipients.size();
  NoticeEntry entry(r, limits, action);
  bool listing = true;
  for (std::size_t i = start; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.starts_with("------")) {
      copy = after_line(text, line);
      break;
    }
    std::size_t indent = line.find_first_not_of(" \t");
    if (indent == std::string_view::npos) {
      entry.flush();
    } else if (!listing) {
      continue;
    } else if (indent == 0) {
      entry.flush();
      listing = false;  // "No action is required on your part...": the list has ended
    } else if (indent <= 3 && line[0] == ' ') {
      std::string_view t = trim(line);
      std::string_view word = t.substr(0, t.find_first_of(" \t"));
      std::string_view rest = t.substr(word.size());
      if (word.size() > 1 && word.back() == ':') word.remove_suffix(1);
      entry.start(word);
      entry.reason(rest);
    } else {
      entry.reason(line);
    }
  }
  entry.flush();
  return r.recipients.size() > before;
}

// Sendmail: "----- The following addresses had permanent fatal errors -----" then each address
// on its own line, its reason indented as "(reason: ...)"; transient errors likewise. Read only
// after Sendmail's introduction ("The original message was received at ...") or, in a message
// from a mail system, from the top: a person's forwarded copy of such a notice is no bounce.
bool read_sendmail(const LineList& lines, std::string_view text, const ReportLimits& limits,
                   Report& r, std::string_view& copy, bool from_system) {
  std::size_t intro = find_intro(lines, 0, 20, {"the original message was received at "});
  std::size_t from = intro;
  if (intro == lines.size()) {
    if (!from_system) return false;
    from = 0;
  }
  std::size_t before = r.recipients.size();
  NoticeEntry entry(r, limits, "");
  bool section = false;
  for (std::size_t i = from; i < lines.size(); ++i) {
    std::string_view t = trim(lines[i]);
    if (t.starts_with("-----")) {
      std::string lower = to_lower_ascii(t);
      section = true;
      if (lower.find("had permanent fatal errors") != std::string::npos) {
        entry.set_action("failed");
      } else if (lower.find("had transient non-fatal errors") != std::string::npos) {
        entry.set_action("delayed");
      } else {
        section = false;
        entry.flush();
        if (lower.find("message follows") != std::string::npos ||
            lower.find("header follows") != std::string::npos) {
          copy = after_line(text, lines[i]);
          break;
        }
      }
    } else if (!section || t.empty()) {
      entry.flush();
    } else if (!is_blank_char(lines[i][0])) {
      entry.start(t);
    } else if (starts_with_ci(t, "(reason:")) {
      std::string_view reason = t.substr(8);
      if (reason.ends_with(")")) reason.remove_suffix(1);
      entry.reason(reason);
    }
  }
  entry.flush();
  return r.recipients.size() > before;
}

// One Postfix recipient line: "<a@example.com> (expanded from <b@example.com>): reason".
void postfix_line(std::string_view line, NoticeEntry& entry) {
  std::size_t close = line.find('>');
  if (close == std::string_view::npos) return entry.flush();
  std::string_view address = line.substr(1, close - 1);
  std::string_view rest = trim(line.substr(close + 1));
  std::string_view original;
  if (starts_with_ci(rest, "(expanded from <")) {
    std::size_t end = rest.find(">)");
    if (end == std::string_view::npos) return entry.flush();
    original = rest.substr(16, end - 16);
    rest = trim(rest.substr(end + 2));
  }
  if (!rest.starts_with(":")) return entry.flush();
  entry.start(address, original);
  entry.reason(rest.substr(1));
}

// Postfix's text ("This is the mail system at host mail.example.net."), as its DSNs' first part
// or on its own: "<a@example.com>: reason" with the reason's further lines indented. The list
// ends at the first line, after a recipient, that is neither blank, indented nor a recipient:
// a text-only notice appends the returned message's headers and body there.
bool read_postfix(const LineList& lines, const ReportLimits& limits, Report& r) {
  std::size_t intro = find_intro(
      lines, 0, 10, {"this is the mail system at host ", "this is the postfix program at host "});
  if (intro == lines.size()) return false;
  std::string action = "failed";
  std::size_t start = intro + 1;
  for (std::size_t i = intro + 1; i < lines.size() && i < intro + 40; ++i) {
    if (contains_ci(lines[i], "this is a warning only")) action = "delayed";
    if (contains_ci(lines[i], "was successfully delivered")) return false;
    if (to_lower_ascii(trim(lines[i])) == "the mail system") start = i + 1;
  }
  std::size_t before = r.recipients.size();
  NoticeEntry entry(r, limits, action);
  for (std::size_t i = start; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.starts_with("--")) break;
    if (line.starts_with("<")) {
      postfix_line(line, entry);
    } else if (!line.empty() && is_blank_char(line[0])) {
      entry.reason(line);
    } else {
      entry.flush();
      if (!trim(line).empty() && r.recipients.size() > before) break;
    }
  }
  entry.flush();
  if (r.recipients.size() == before) return false;
  set_once(r.reporting_mta, host_after(lines[intro], "at host "));
  return true;
}

}  // namespace

void read_notice(std::string_view text, const ReportLimits& limits, Report& r,
                 std::string_view& copy, bool from_mail_system) {
  LineList lines = split_lines(text);
  bool read = false;
  for (auto reader : {read_qmail, read_exim}) {
    copy = {};
    if ((read = reader(lines, text, limits, r, copy))) break;
  }
  if (!read) {
    copy = {};
    read = read_sendmail(lines, text, limits, r, copy, from_mail_system);
  }
  if (!read) {
    copy = {};
    read = read_postfix(lines, limits, r);
  }
  if (read) r.kind = kind_of(r.recipients);
}

}  // namespace bulkmail::bounce
