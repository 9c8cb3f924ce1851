#include "bounce/dsn.h"

#include <string>
#include <utility>

#include "base/text.h"
#include "bounce/bounded_text.h"
#include "bounce/field_block.h"
#include "bounce/report_fill.h"

namespace bulkmail::bounce {
namespace {

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
    int h = hex_digit_value(a[k]);
    if (h < 0) return 0;
    cp = cp * 16 + static_cast<char32_t>(h);
  }
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  append_utf8(out, cp);
  return close + 1 - i;
}

// A DSN address field's value ("rfc822; a@example.com", "utf-8; j\x{F6}rg@example.com") as the
// address alone, not yet checked or cleaned. A utf-8 address has its \x{..} escapes decoded,
// and in an ASCII message/delivery-status also its xtext "+HH" (RFC 6533 section 3).
std::string decode_address(std::string_view value, bool global) {
  std::string type;
  std::string_view a = unbracket(strip_type(value, &type));
  if (type != "utf-8") return std::string(a.substr(0, kMaxAddress + 1));
  std::string out;
  for (std::size_t i = 0; i < a.size() && out.size() <= kMaxAddress;) {
    if (std::size_t n = unicode_escape_at(a, i, out)) {
      i += n;
    } else if (!global && a[i] == '+' && i + 2 < a.size() && hex_digit_value(a[i + 1]) >= 0 &&
               hex_digit_value(a[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit_value(a[i + 1]) * 16 + hex_digit_value(a[i + 2]));
      i += 3;
    } else {
      out += a[i++];
    }
  }
  return out;
}

// The address of a DSN address field, "" when it has none. One that is not exactly one address
// ("a@x, b@y", a NUL, an xtext-decoded '@' or line break) is "" too, and `bad` is set.
std::string checked_address(std::string_view value, bool global, bool& bad) {
  std::string a = decode_address(value, global);
  if (a.empty()) return {};
  if (!is_one_address(a)) {
    bad = true;
    return {};
  }
  return clean(a, kMaxAddress);
}

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

void add_group(Report& r, const ReportLimits& limits, const Group& g, bool global) {
  if (!g.has(Group::kFinal | Group::kOriginal)) return;
  ReportRecipient x;
  bool bad_final = false, bad_original = false;
  if (g.has(Group::kFinal)) x.address = checked_address(g.final_rcpt, global, bad_final);
  if (g.has(Group::kOriginal))
    x.original_recipient = checked_address(g.original_rcpt, global, bad_original);
  if (bad_final) {
    add_note(r, "a Final-Recipient that is not one address was dropped");
    return;
  }
  if (bad_original) add_note(r, "an Original-Recipient that is not one address was dropped");
  if (x.address.empty()) std::swap(x.address, x.original_recipient);
  if (x.address.empty()) return;
  x.action = clean(to_lower_ascii(first_word(g.action)), 32);
  std::string_view status = first_word(g.status);
  if (std::string code = enhanced_status_in(status); code.size() == status.size()) x.status = code;
  x.diagnostic = clean(strip_type(g.diagnostic));
  // Exim's generic 5.0.0: the diagnostic's own code of the same class is the one that counts.
  if (x.status.size() >= 5 && x.status.ends_with(".0.0")) {
    std::string specific = enhanced_status_in(x.diagnostic);
    if (!specific.empty() && specific[0] == x.status[0] && !specific.ends_with(".0.0"))
      x.status = specific;
  }
  x.remote_mta = clean(strip_type(g.remote_mta));
  add_recipient(r, limits, std::move(x));
}

}  // namespace

bool is_one_address(std::string_view a) {
  if (a.size() < 3 || a.size() > kMaxAddress) return false;
  std::size_t at = a.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size() ||
      a.find('@', at + 1) != std::string_view::npos)
    return false;
  for (char c : a) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F || c == ',' || c == '<' || c == '>' || c == ';' || c == '(' ||
        c == ')' || c == '"' || c == '\\')
      return false;
  }
  return true;
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

}  // namespace bulkmail::bounce
