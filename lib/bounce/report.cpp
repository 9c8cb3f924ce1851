#include "bounce/report.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <mutex>

#include "base/text.h"

namespace bulkmail {
namespace {

// ---------------------------------------------------------------------------------------------
// Bounded text: every string that reaches a Report goes through clean(), every line through
// Lines, every field block through read_field_blocks(). None of them looks at a byte twice.

constexpr std::size_t kMaxValue = 8 * 1024;        // one field value, unfolded
constexpr std::size_t kMaxFieldsPerBlock = 200;    // fields kept from one header block
constexpr std::size_t kMaxShown = 2 * 1024;        // one string in a Report
constexpr std::size_t kMaxAddress = 512;           // one address in a Report
constexpr std::size_t kMaxLine = 4 * 1024;         // bytes of one notice line looked at
constexpr std::size_t kMaxNoticeLines = 5'000;     // lines of a plain-text notice looked at
constexpr std::size_t kMaxPartText = 1024 * 1024;  // decoded bytes kept from one part
constexpr std::size_t kMaxListUnsubscribe = 4;     // URIs kept from List-Unsubscribe
constexpr std::size_t kMaxReportedDomains = 16;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_blank_char(char c) { return c == ' ' || c == '\t'; }

bool starts_with_ci(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

bool ends_with_ci(std::string_view s, std::string_view lower_suffix) {
  return s.size() >= lower_suffix.size() &&
         starts_with_ci(s.substr(s.size() - lower_suffix.size()), lower_suffix);
}

bool contains_ci(std::string_view s, std::string_view lower_needle) {
  return to_lower_ascii(s).find(lower_needle) != std::string::npos;
}

// The length of the valid UTF-8 sequence at s[i], 0 when there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (len == 0 || c > 0xF4 || i + len > s.size()) return 0;
  char32_t cp = c & (0x7F >> len);
  for (std::size_t k = 1; k < len; ++k) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// `s` as one trimmed line of valid UTF-8, at most `max` bytes: a byte that is not UTF-8 becomes
// U+FFFD; control characters and runs of white space become one space.
std::string clean(std::string_view s, std::size_t max = kMaxShown) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  bool space = false;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::string_view piece;
    if (c < 0x80) {
      if (c <= 0x20 || c == 0x7F) {
        space = true;
        ++i;
        continue;
      }
      piece = s.substr(i, 1);
      ++i;
    } else if (std::size_t len = utf8_length(s, i)) {
      piece = s.substr(i, len);
      i += len;
    } else {
      piece = kReplacement;
      ++i;
    }
    bool gap = space && !out.empty();
    if (out.size() + (gap ? 1 : 0) + piece.size() > max) break;
    if (gap) out += ' ';
    out += piece;
    space = false;
  }
  return out;
}

// Appends `more` to a value being unfolded, with one space between, up to kMaxValue.
void append(std::string& value, std::string_view more) {
  more = trim(more);
  if (more.empty() || value.size() >= kMaxValue) return;
  if (!value.empty()) value += ' ';
  value.append(more.substr(0, kMaxValue - std::min(value.size(), kMaxValue)));
}

void add_note(Report& r, std::string_view note) {
  if (!r.note.empty()) r.note += "; ";
  r.note += note;
}

// The lines of a text, without their LF or CRLF.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    std::size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Header field blocks: a DSN's per-message and per-recipient groups, an ARF report, the headers
// of a returned message. RFC 5322 syntax, read leniently.

struct Field {
  std::string name;   // lower-case
  std::string value;  // unfolded and trimmed, at most kMaxValue bytes
};
using FieldBlock = std::vector<Field>;

// "Name: value", where the name is printable ASCII without ':' (white space before the colon is
// tolerated, as RFC 5322's obsolete syntax allows). False when `line` is not a header field.
bool split_field(std::string_view line, std::string_view& name, std::string_view& value) {
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  name = line.substr(0, colon);
  while (!name.empty() && is_blank_char(name.back())) name.remove_suffix(1);
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (c < 33 || c > 126) return false;
  }
  value = line.substr(colon + 1);
  return true;
}

// The blank-line separated blocks of header fields in `text`, at most `max_blocks`. Folded
// lines are unfolded; lines that are neither a field nor a continuation are skipped.
std::vector<FieldBlock> read_field_blocks(std::string_view text, std::size_t max_blocks) {
  std::vector<FieldBlock> blocks;
  FieldBlock block;
  bool in_field = false;
  auto close = [&] {
    if (!block.empty()) blocks.push_back(std::move(block));
    block.clear();
    in_field = false;
  };
  Lines lines(text);
  std::string_view line;
  while (blocks.size() < max_blocks && lines.next(line)) {
    if (trim(line).empty()) {
      close();
    } else if (is_blank_char(line[0])) {
      if (in_field) append(block.back().value, line.substr(0, kMaxValue));
    } else {
      std::string_view name, value;
      in_field = block.size() < kMaxFieldsPerBlock && split_field(line, name, value);
      if (in_field) {
        block.push_back({to_lower_ascii(name), {}});
        append(block.back().value, value.substr(0, kMaxValue));
      }
    }
  }
  if (blocks.size() < max_blocks) close();
  return blocks;
}

// The first word of a value, up to white space, ';' or '(' ("failed" of "failed (permanent)").
std::string_view first_word(std::string_view v) {
  v = trim(v);
  return v.substr(0, v.find_first_of(" \t;("));
}

// "rfc822; a@example.com" without its type ("rfc822", stored in *type when asked for). A value
// whose text before ';' is not one word has no type.
std::string_view strip_type(std::string_view v, std::string* type = nullptr) {
  v = trim(v);
  std::size_t semi = v.find(';');
  if (semi == std::string_view::npos || semi == 0 || semi > 32) return v;
  std::string_view t = trim(v.substr(0, semi));
  for (char c : t) {
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_';
    if (!word) return v;
  }
  if (t.empty()) return v;
  if (type) *type = to_lower_ascii(t);
  return trim(v.substr(semi + 1));
}

// "<a@example.com>" without its angle brackets.
std::string_view unbracket(std::string_view v) {
  v = trim(v);
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = trim(v.substr(1, v.size() - 2));
  return v;
}

// What the first <...> of `v` holds, or "" when there is none.
std::string_view first_bracketed(std::string_view v) {
  std::size_t open = v.find('<');
  if (open == std::string_view::npos) return {};
  std::size_t close = v.find('>', open + 1);
  if (close == std::string_view::npos) return {};
  return trim(v.substr(open + 1, close - open - 1));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A "\x{HEX}" escape at a[i] (RFC 6533's embedded-unicode-char); its length, 0 when none.
std::size_t unicode_escape_at(std::string_view a, std::size_t i, std::string& out) {
  if (a.substr(i, 3) != "\\x{") return 0;
  std::size_t close = a.find('}', i + 3);
  if (close == std::string_view::npos || close == i + 3 || close > i + 9) return 0;
  char32_t cp = 0;
  for (std::size_t k = i + 3; k < close; ++k) {
    int h = hex_value(a[k]);
    if (h < 0) return 0;
    cp = cp * 16 + static_cast<char32_t>(h);
  }
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  append_utf8(out, cp);
  return close + 1 - i;
}

// A DSN address field's value ("rfc822; a@example.com", "utf-8; j\x{F6}rg@example.com") as the
// address alone. A utf-8 address has its \x{..} escapes decoded, and in an ASCII
// message/delivery-status also its xtext "+HH" (RFC 6533 section 3).
std::string decode_address(std::string_view value, bool global) {
  std::string type;
  std::string_view a = unbracket(strip_type(value, &type));
  if (type != "utf-8") return clean(a, kMaxAddress);
  std::string out;
  for (std::size_t i = 0; i < a.size() && out.size() < kMaxAddress;) {
    if (std::size_t n = unicode_escape_at(a, i, out)) {
      i += n;
    } else if (!global && a[i] == '+' && i + 2 < a.size() && hex_value(a[i + 1]) >= 0 &&
               hex_value(a[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(a[i + 1]) * 16 + hex_value(a[i + 2]));
      i += 3;
    } else {
      out += a[i++];
    }
  }
  return clean(out, kMaxAddress);
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

// ---------------------------------------------------------------------------------------------
// The returned message's identifying headers.

std::string message_id_of(std::string_view v) {
  std::string_view id = first_bracketed(v);
  if (id.empty()) id = first_word(v);  // RFC 5965's own example has no brackets
  if (id.empty()) return {};
  return clean("<" + std::string(id) + ">", 998);
}

std::vector<std::string> bracketed_all(std::string_view v, std::size_t max) {
  std::vector<std::string> out;
  while (out.size() < max) {
    std::size_t open = v.find('<');
    if (open == std::string_view::npos) break;
    std::size_t close = v.find('>', open + 1);
    if (close == std::string_view::npos) break;
    std::string uri = clean(v.substr(open + 1, close - open - 1));
    if (!uri.empty()) out.push_back(std::move(uri));
    v.remove_prefix(close + 1);
  }
  return out;
}

void set_once(std::string& field, std::string value) {
  if (field.empty()) field = std::move(value);
}

OriginalMessage original_from(const FieldBlock& headers) {
  OriginalMessage o;
  o.found = true;
  for (const Field& f : headers) {
    if (f.name == "message-id") {
      set_once(o.message_id, message_id_of(f.value));
    } else if (f.name == "list-unsubscribe") {
      if (o.list_unsubscribe.empty())
        o.list_unsubscribe = bracketed_all(f.value, kMaxListUnsubscribe);
    } else if (f.name == "list-id") {
      std::string_view id = first_bracketed(f.value);
      set_once(o.list_id, clean(id.empty() ? trim(f.value) : id));
    } else if (f.name == "return-path") {
      std::string_view rp = first_bracketed(f.value);
      if (rp.empty() && f.value.find('<') == std::string::npos) rp = trim(f.value);
      set_once(o.return_path, clean(rp, kMaxAddress));
    } else if (f.name == "to") {
      set_once(o.to, clean(f.value));
    } else if (f.name == "from") {
      set_once(o.from, clean(f.value));
    } else if (f.name == "subject") {
      set_once(o.subject, clean(f.value));
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// DSN (RFC 3464, RFC 6533): the per-message fields, then one group per recipient.

// A per-recipient group as read, before decoding. `seen` has a bit for each field it holds.
struct Group {
  enum : unsigned {
    kFinal = 1,
    kOriginal = 2,
    kAction = 4,
    kStatus = 8,
    kDiagnostic = 16,
    kRemote = 32
  };
  std::string final_rcpt, original_rcpt, action, status, diagnostic, remote_mta;
  unsigned seen = 0;
  bool has(unsigned bits) const { return (seen & bits) != 0; }
};

// The bit of a per-recipient field, 0 for any other field.
unsigned group_bit(std::string_view name) {
  if (name == "final-recipient") return Group::kFinal;
  if (name == "original-recipient") return Group::kOriginal;
  if (name == "action") return Group::kAction;
  if (name == "status") return Group::kStatus;
  if (name == "diagnostic-code") return Group::kDiagnostic;
  if (name == "remote-mta") return Group::kRemote;
  return 0;
}

// Whether field `bit` cannot belong to group `g`, so that it starts the next one: the blank line
// between two groups is missing. The group has that field already, or it is an address field
// and the group has the other address and a field that comes after both (Status, Remote-MTA,
// Diagnostic-Code). The addresses come in either order (Postfix writes Final-Recipient first,
// Sendmail Original-Recipient), and Exim writes Action before them.
bool starts_next_group(const Group& g, unsigned bit) {
  if (g.has(bit)) return true;
  constexpr unsigned kAfter = Group::kStatus | Group::kDiagnostic | Group::kRemote;
  if (bit == Group::kFinal) return g.has(Group::kOriginal) && g.has(kAfter);
  if (bit == Group::kOriginal) return g.has(Group::kFinal) && g.has(kAfter);
  return false;
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

void add_group(Report& r, const ReportLimits& limits, const Group& g, bool global) {
  if (!g.has(Group::kFinal | Group::kOriginal)) return;
  ReportRecipient x;
  if (g.has(Group::kFinal)) x.address = decode_address(g.final_rcpt, global);
  if (g.has(Group::kOriginal)) x.original_recipient = decode_address(g.original_rcpt, global);
  if (x.address.empty()) std::swap(x.address, x.original_recipient);
  if (x.address.empty()) return;
  x.action = clean(to_lower_ascii(first_word(g.action)), 32);
  std::string_view status = first_word(g.status);
  if (std::string code = enhanced_status_in(status); code.size() == status.size()) x.status = code;
  x.diagnostic = clean(strip_type(g.diagnostic));
  x.remote_mta = clean(strip_type(g.remote_mta));
  add_recipient(r, limits, std::move(x));
}

void read_dsn(std::string_view body, bool global, const ReportLimits& limits, Report& r) {
  for (const FieldBlock& block : read_field_blocks(body, limits.max_recipients + 2)) {
    Group g;
    for (const Field& f : block) {
      unsigned bit = group_bit(f.name);
      if (bit == 0) {
        if (f.name == "reporting-mta") set_once(r.reporting_mta, clean(strip_type(f.value)));
        if (f.name == "arrival-date") set_once(r.arrival_date, clean(f.value));
        continue;
      }
      if (starts_next_group(g, bit)) {
        add_group(r, limits, g, global);
        g = Group{};
      }
      g.seen |= bit;
      std::string* to = bit == Group::kFinal      ? &g.final_rcpt
                        : bit == Group::kOriginal ? &g.original_rcpt
                        : bit == Group::kAction   ? &g.action
                        : bit == Group::kStatus   ? &g.status
                        : bit == Group::kRemote   ? &g.remote_mta
                                                  : &g.diagnostic;
      *to = f.value;
    }
    add_group(r, limits, g, global);
  }
  r.kind = kind_of(r.recipients);
}

// ---------------------------------------------------------------------------------------------
// ARF (RFC 5965): one block of fields. Original-Rcpt-To and Reported-Domain may repeat.

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

// ---------------------------------------------------------------------------------------------
// Plain-text notices. Each reader first finds its format's own introduction near the top, then
// takes addresses only from the failure statement that follows it, and stops at the line that
// introduces the copy of the message: nothing in the quoted message is ever read as a failure.

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
// until a blank line; the copy follows "--- Below this line is a copy of the message.".
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
    if (t.starts_with("--- Below this line") || t.starts_with("--- Enclosed are")) {
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
// on its own line, its reason indented as "(reason: ...)"; transient errors likewise.
bool read_sendmail(const LineList& lines, std::string_view text, const ReportLimits& limits,
                   Report& r, std::string_view& copy) {
  std::size_t before = r.recipients.size();
  NoticeEntry entry(r, limits, "");
  bool section = false;
  for (std::size_t i = 0; i < lines.size(); ++i) {
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
// or on its own: "<a@example.com>: reason" with the reason's further lines indented.
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
    }
  }
  entry.flush();
  if (r.recipients.size() == before) return false;
  set_once(r.reporting_mta, host_after(lines[intro], "at host "));
  return true;
}

// Tries each format in turn; `copy` is set only by the one that recognised the notice.
void read_notice(std::string_view text, const ReportLimits& limits, Report& r,
                 std::string_view& copy) {
  LineList lines = split_lines(text);
  bool read = false;
  for (auto reader : {read_qmail, read_exim, read_sendmail}) {
    copy = {};
    if ((read = reader(lines, text, limits, r, copy))) break;
  }
  if (!read) {
    copy = {};
    read = read_postfix(lines, limits, r);
  }
  if (read) r.kind = kind_of(r.recipients);
}

// ---------------------------------------------------------------------------------------------
// Auto-replies (RFC 3834 and what vacation programs and Exchange send instead).

constexpr std::string_view kAutoReplySubjects[] = {
    "out of office",        "out of the office",   "automatic reply",
    "auto-reply",           "autoreply",           "auto reply",
    "auto response",        "auto-response",       "autoresponse",
    "automatic response",   "on vacation",         "vacation reply",
    "vacation notice",      "vacation message",    "abwesenheitsnotiz",
    "automatische antwort", "réponse automatique", "respuesta automática",
    "risposta automatica",  "resposta automática", "autosvar",
    "automatisch antwoord"};

// Whether the headers are a mail system's: From MAILER-DAEMON or postmaster, or Exim's
// X-Failed-Recipients. Mail systems mark their bounces Auto-Submitted: auto-replied too (Postfix,
// Exim, Gmail), so a bounce not understood stays unknown rather than passing for an auto-reply.
bool from_mail_system(const FieldBlock& headers) {
  for (const Field& f : headers) {
    if (f.name == "x-failed-recipients") return true;
    if (f.name != "from") continue;
    std::string from = to_lower_ascii(f.value);
    if (from.find("mailer-daemon") != std::string::npos ||
        from.find("postmaster@") != std::string::npos ||
        from.find("mail delivery") != std::string::npos)
      return true;
  }
  return false;
}

bool looks_auto_reply(const FieldBlock& headers) {
  for (const Field& f : headers) {
    std::string word = to_lower_ascii(first_word(f.value));
    if (f.name == "auto-submitted" && word == "auto-replied") return true;
    if ((f.name == "precedence" || f.name == "x-precedence") && word == "auto_reply") return true;
    bool flag = f.name == "x-autoreply" || f.name == "x-autorespond" ||
                f.name == "x-autoresponder" || f.name == "x-autogenerated" ||
                f.name == "x-mail-autoreply" || f.name == "x-autoreply-from";
    if (flag && word != "no" && word != "false" && word != "0") return true;
    if (f.name == "subject") {
      std::string subject = to_lower_ascii(f.value);
      for (std::string_view s : kAutoReplySubjects)
        if (subject.find(s) != std::string::npos) return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The input's budget, before GMime sees it.

struct Cut {
  std::size_t length;
  std::string reason;
};

// How much of `in` may be read: whole lines only, within every limit.
Cut budget(std::string_view in, const ReportLimits& limits) {
  Cut cut{in.size(), {}};
  std::size_t max_bytes = std::max<std::size_t>(limits.max_bytes, 1);
  if (in.size() > max_bytes) {
    std::size_t nl = in.rfind('\n', max_bytes - 1);
    cut.length = nl == std::string_view::npos ? max_bytes : nl + 1;
    cut.reason = "the input is larger than " + std::to_string(max_bytes) +
                 " bytes: only the first " + std::to_string(cut.length) + " were read";
  }
  std::size_t lines = 0, types = 0, dashes = 0;
  for (std::size_t pos = 0; pos < cut.length;) {
    std::string_view rest = in.substr(pos, cut.length - pos);
    const char* over = nullptr;
    if (++lines > limits.max_lines) over = "lines";
    if (starts_with_ci(rest, "content-type") && ++types > limits.max_content_types)
      over = "Content-Type lines (MIME nesting)";
    if (rest.starts_with("--") && ++dashes > limits.max_boundaries)
      over = "lines starting with \"--\" (MIME parts)";
    if (over && pos > 0) {
      return {pos, std::string("too many ") + over + ": only the first " + std::to_string(pos) +
                       " bytes were read"};
    }
    std::size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return cut;
}

// `in` without an mbox "From " line, as Postfix's local(8) and pipe(8) may add.
std::string_view skip_mbox_line(std::string_view in) {
  if (!in.starts_with("From ")) return in;
  std::size_t nl = in.find('\n');
  return nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
}

// ---------------------------------------------------------------------------------------------
// GMime: parsing, and walking the parts. Every object we own is held by a GRef; what GMime's
// getters return is borrowed from its parent.

struct GObjectUnref {
  void operator()(gpointer p) const {
    if (p) g_object_unref(p);
  }
};
template <class T>
using GRef = std::unique_ptr<T, GObjectUnref>;

void init_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

bool is_type(GMimeObject* o, const char* type, const char* subtype) {
  GMimeContentType* ct = g_mime_object_get_content_type(o);
  return ct && g_mime_content_type_is_type(ct, type, subtype);
}

FieldBlock header_block(GMimeObject* o) {
  FieldBlock block;
  GMimeHeaderList* list = o ? g_mime_object_get_header_list(o) : nullptr;
  if (!list) return block;
  int count = std::min(g_mime_header_list_get_count(list), static_cast<int>(kMaxFieldsPerBlock));
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* name = h ? g_mime_header_get_name(h) : nullptr;
    const char* value = h ? g_mime_header_get_value(h) : nullptr;
    if (!name || !value) continue;
    block.push_back({to_lower_ascii(name), {}});
    append(block.back().value, std::string_view(value).substr(0, kMaxValue));
  }
  return block;
}

// A leaf part's content, with its transfer encoding undone, at most kMaxPartText bytes.
std::string part_text(GMimeObject* o) {
  if (!o || !GMIME_IS_PART(o)) return {};
  GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(o));
  if (!content) return {};
  GRef<GMimeStream> out(g_mime_stream_mem_new());
  if (!out) return {};
  g_mime_data_wrapper_write_to_stream(content, out.get());  // on an error, keep what was decoded
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  if (!bytes || !bytes->data) return {};
  return std::string(reinterpret_cast<const char*>(bytes->data),
                     std::min<std::size_t>(bytes->len, kMaxPartText));
}

// The parts of a report: found among the top-level multiparts, never inside a returned message.
struct Parts {
  GMimeObject* status = nullptr;  // message/delivery-status or message/global-delivery-status
  bool global = false;
  GMimeObject* feedback = nullptr;  // message/feedback-report
  GMimeObject* original = nullptr;  // the returned message or its headers
  GMimeObject* text = nullptr;      // the first text/plain
  std::size_t visited = 0;
  bool cut = false;
};

// Whether the Content-Type header as written names `lower_type` ("message/rfc822"): GMime types
// an encoded message/rfc822 as application/octet-stream, whatever the header says.
bool declares_type(GMimeObject* o, std::string_view lower_type) {
  const char* declared = g_mime_object_get_header(o, "Content-Type");
  return declared && starts_with_ci(trim(declared), lower_type);
}

bool is_original(GMimeObject* o) {
  return GMIME_IS_MESSAGE_PART(o) || is_type(o, "message", "rfc822") ||
         is_type(o, "message", "global") || is_type(o, "text", "rfc822-headers") ||
         is_type(o, "message", "rfc822-headers") || is_type(o, "message", "global-headers") ||
         declares_type(o, "message/rfc822") || declares_type(o, "message/global");
}

void walk(GMimeObject* o, int depth, const ReportLimits& limits, Parts& p) {
  if (!o) return;
  if (p.visited >= limits.max_parts) {
    p.cut = true;
    return;
  }
  ++p.visited;
  if (GMIME_IS_MULTIPART(o)) {
    if (depth >= limits.max_depth) {
      p.cut = true;
      return;
    }
    GMimeMultipart* multipart = GMIME_MULTIPART(o);
    int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count && !p.cut; ++i)
      walk(g_mime_multipart_get_part(multipart, i), depth + 1, limits, p);
  } else if (is_type(o, "message", "delivery-status") ||
             is_type(o, "message", "global-delivery-status")) {
    if (!p.status) {
      p.status = o;
      p.global = is_type(o, "message", "global-delivery-status");
    }
  } else if (is_type(o, "message", "feedback-report")) {
    if (!p.feedback) p.feedback = o;
  } else if (is_original(o)) {
    if (!p.original) p.original = o;
  } else if (is_type(o, "text", "plain")) {
    if (!p.text) p.text = o;
  }
}

OriginalMessage read_original(GMimeObject* o) {
  if (GMIME_IS_MESSAGE_PART(o)) {
    GMimeMessage* m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
    return m ? original_from(header_block(GMIME_OBJECT(m))) : OriginalMessage{};
  }
  // text/rfc822-headers, or a message/rfc822 that GMime left as a leaf because it was base64 or
  // quoted-printable encoded (against RFC 2046, but Exchange does it).
  auto blocks = read_field_blocks(part_text(o), 1);
  return blocks.empty() ? OriginalMessage{} : original_from(blocks[0]);
}

// Reads the parsed message into `r`.
void read_message(GMimeMessage* message, const ReportLimits& limits, Report& r) {
  FieldBlock headers = header_block(GMIME_OBJECT(message));
  Parts parts;
  walk(g_mime_message_get_mime_part(message), 0, limits, parts);
  if (parts.cut)
    add_note(r, "the MIME structure is deeper or larger than the limits: not all of it was read");

  std::string text;
  std::string_view copy;
  if (parts.status) {
    read_dsn(part_text(parts.status), parts.global, limits, r);
  } else if (parts.feedback) {
    read_arf(part_text(parts.feedback), limits, r);
  } else if (parts.text) {
    text = part_text(parts.text);
    read_notice(text, limits, r, copy);
  }
  GMimeObject* body = g_mime_message_get_mime_part(message);
  bool report = parts.status || parts.feedback || !r.recipients.empty() ||
                (body && is_type(body, "multipart", "report")) || from_mail_system(headers);
  if (!report && looks_auto_reply(headers)) r.kind = ReportKind::auto_reply;

  if (parts.original) {
    r.original = read_original(parts.original);
  } else if (!copy.empty()) {
    auto blocks = read_field_blocks(copy, 1);
    if (!blocks.empty()) r.original = original_from(blocks[0]);
  }
}

}  // namespace

std::string_view to_string(ReportKind kind) {
  switch (kind) {
    case ReportKind::bounce:
      return "bounce";
    case ReportKind::delay:
      return "delay";
    case ReportKind::complaint:
      return "complaint";
    case ReportKind::auto_reply:
      return "auto-reply";
    case ReportKind::unknown:
      break;
  }
  return "unknown";
}

Result<Report> parse_report(std::string_view message, const ReportLimits& limits) {
  std::string_view in = skip_mbox_line(message);
  if (trim(in).empty()) return make_error("the input is empty: it is not a mail message");
  std::string_view first = in.substr(0, in.find('\n'));
  if (first.ends_with('\r')) first.remove_suffix(1);
  std::string_view name, value;
  if (!split_field(first, name, value))
    return make_error("the input is not a mail message: it does not begin with a header field");

  Report r;
  Cut cut = budget(in, limits);
  if (!cut.reason.empty()) add_note(r, cut.reason);
  in = in.substr(0, cut.length);

  init_gmime();
  GRef<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(in.data(), in.size()));
  GRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GRef<GMimeMessage> parsed(g_mime_parser_construct_message(parser.get(), nullptr));
  if (parsed) {
    read_message(parsed.get(), limits, r);
  } else {
    // It begins like a message, so it is one, cut off inside its header (GMime refuses a field
    // name that the input ends in): unknown, not EX_DATAERR.
    add_note(r, "the header ends in the middle of a field: nothing else was read");
  }
  return r;
}

bool complaint_suppresses(std::string_view feedback_type) {
  std::string t = to_lower_ascii(trim(feedback_type));
  return t == "abuse" || t == "fraud" || t == "virus";
}

bool looks_redacted(std::string_view address) {
  address = unbracket(address);
  std::string local = to_lower_ascii(address.substr(0, address.rfind('@')));
  if (local.empty() || local.find("redacted") != std::string::npos) return true;
  if (std::all_of(local.begin(), local.end(), [](char c) { return c == 'x' || c == '*'; }))
    return true;
  return local.size() >= 16 &&
         std::all_of(local.begin(), local.end(), [](char c) { return hex_value(c) >= 0; });
}

}  // namespace bulkmail
