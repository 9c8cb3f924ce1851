#include "base/address.h"

#include <idn2.h>

#include <cctype>

#include <memory>

#include "base/text.h"

namespace bulkmail {
namespace {

constexpr std::size_t kMaxLocal = 64;     // RFC 5321 4.5.3.1.1
constexpr std::size_t kMaxDomain = 253;   // 255 octets on the wire, less the length bytes
constexpr std::size_t kMaxAddress = 254;  // a 256-octet path less its angle brackets
constexpr std::size_t kMaxLabel = 63;

bool is_atext(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

Result<void> check_local_part(std::string_view local) {
  if (local.empty()) return make_error("the part before '@' is empty");
  if (local.size() > kMaxLocal) return make_error("the part before '@' is longer than 64 octets");
  if (!is_ascii(local)) {
    return make_error(
        "the part before '@' has non-ASCII characters, which need SMTPUTF8 (not supported)");
  }
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"')
      return make_error("the quoted part before '@' is not closed");
    for (std::size_t i = 1; i + 1 < local.size(); ++i) {
      unsigned char c = local[i];
      if (c == '\\') {
        ++i;
        if (i + 1 >= local.size())
          return make_error("the quoted part before '@' ends in a backslash");
        c = local[i];
        if (c < 32 || c > 126)
          return make_error("the quoted part before '@' escapes a control character");
      } else if (c == '"') {
        return make_error("the quoted part before '@' has an unescaped quote");
      } else if (c < 32 || c > 126) {
        return make_error("the quoted part before '@' has a control character");
      }
    }
    return {};
  }
  if (local.front() == '.' || local.back() == '.')
    return make_error("the part before '@' starts or ends with a dot");
  if (local.find("..") != std::string_view::npos)
    return make_error("the part before '@' has two dots in a row");
  for (unsigned char c : local) {
    if (c != '.' && !is_atext(c)) {
      return make_error(std::string("the part before '@' has a character not allowed unquoted: '") +
                        static_cast<char>(c) + "'");
    }
  }
  return {};
}

struct Idn2Free {
  void operator()(char* p) const { idn2_free(p); }
};

std::string lower_local(std::string_view local) {
  // Mailbox providers treat local parts case-insensitively, and suppression must match however
  // the address was typed, so the queue and the suppression list share one lower-cased form.
  return to_lower_ascii(local);
}

}  // namespace

Result<std::string> parse_domain(std::string_view domain) {
  if (domain.empty()) return make_error("the domain after '@' is empty");
  // Said before any label is quoted back, so that no error text carries a line break.
  if (auto text = check_header_value(domain); !text) {
    return make_error("the domain " + text.error().message);
  }
  if (domain.front() == '[')
    return make_error("address literals ([...]) are not accepted for bulk mail");
  std::string lowered = to_lower_ascii(domain);
  if (!is_ascii(lowered) || lowered.find("xn--") != std::string::npos) {
    char* out = nullptr;
    int rc = idn2_to_ascii_8z(lowered.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    std::unique_ptr<char, Idn2Free> guard(out);
    if (rc != IDN2_OK) {
      return make_error(std::string("the international domain is not valid: ") + idn2_strerror(rc));
    }
    lowered = to_lower_ascii(out);
    // IDNA maps some characters to nothing (U+034F, the soft hyphen): all of them, none left.
    if (lowered.empty()) return make_error("the domain after '@' maps to nothing (IDNA)");
  }
  if (lowered.size() > kMaxDomain) return make_error("the domain is longer than 253 octets");
  if (lowered.back() == '.') return make_error("the domain ends with a dot");
  std::size_t labels = 0;
  std::string_view rest = lowered;
  std::string_view last;
  while (true) {
    auto dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    if (label.empty()) return make_error("the domain has an empty label (two dots in a row?)");
    if (label.size() > kMaxLabel) return make_error("a domain label is longer than 63 octets");
    if (label.front() == '-' || label.back() == '-') {
      return make_error("domain label '" + std::string(label) + "' starts or ends with a hyphen");
    }
    for (unsigned char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        return make_error("domain label '" + std::string(label) +
                          "' has a character other than a letter, digit or hyphen");
      }
    }
    ++labels;
    last = label;
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  if (labels < 2) return make_error("the domain has no dot: a public mail domain needs one");
  if (last.find_first_not_of("0123456789") == std::string_view::npos) {
    return make_error("the domain's last label is all digits");
  }
  return lowered;
}

Result<Address> parse_address(std::string_view input) {
  std::string_view s = trim(input);
  if (s.empty()) return make_error("the address is empty");
  if (auto text = check_header_value(s); !text) {
    return make_error("the address " + text.error().message);
  }
  if (s.size() > kMaxAddress * 4) return make_error("the address is longer than 254 octets");
  auto at = s.rfind('@');
  if (at == std::string_view::npos) return make_error("the address has no '@'");
  std::string_view local = s.substr(0, at);
  std::string_view domain = s.substr(at + 1);
  if (!local.empty() && local.front() != '"' && local.find('@') != std::string_view::npos) {
    return make_error("the address has more than one '@'");
  }
  if (auto checked = check_local_part(local); !checked) return checked.error();
  auto ascii_domain = parse_domain(domain);
  if (!ascii_domain) return ascii_domain.error();
  Address a{lower_local(local), std::move(ascii_domain.value())};
  if (a.local.size() + 1 + a.domain.size() > kMaxAddress) {
    return make_error("the address is longer than 254 octets");
  }
  return a;
}

Result<Mailbox> parse_mailbox(std::string_view input) {
  std::string_view s = trim(input);
  if (auto text = check_header_value(s); !text) {
    return make_error("the mailbox " + text.error().message);
  }
  auto lt = s.rfind('<');
  if (lt == std::string_view::npos) {
    auto a = parse_address(s);
    if (!a) return a.error();
    return Mailbox{"", std::move(a.value())};
  }
  if (s.back() != '>') return make_error("the mailbox has '<' without a closing '>' at the end");
  std::string_view name = trim(s.substr(0, lt));
  std::string display;
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
    name = name.substr(1, name.size() - 2);
    for (std::size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '\\' && i + 1 < name.size()) ++i;
      display += name[i];
    }
  } else {
    if (name.find('"') != std::string_view::npos)
      return make_error("the display name has an unbalanced quote");
    display = std::string(name);
  }
  auto a = parse_address(s.substr(lt + 1, s.size() - lt - 2));
  if (!a) return a.error();
  return Mailbox{std::move(display), std::move(a.value())};
}

std::string mask_address(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return "***";
  std::string out;
  if (at > 1) out += address.front();
  out += "***";
  out += address.substr(at);
  return out;
}

namespace {

// Generous on purpose: whatever could be part of an address in someone's quoting of it (atext,
// dots, quotes, UTF-8) counts, so that masking never leaves a piece of a local part behind.
bool local_char(unsigned char c) {
  return std::isalnum(c) || c >= 0x80 ||
         std::string_view("!#$%&'*+-/=?^_`{|}~.\"\\").find(static_cast<char>(c)) !=
             std::string_view::npos;
}
bool domain_char(unsigned char c) {
  return std::isalnum(c) || c >= 0x80 || c == '-' || c == '.' || c == '[' || c == ']' || c == ':';
}

}  // namespace

std::string mask_addresses_in(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  for (std::size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
    std::size_t start = at;
    while (start > copied && local_char(static_cast<unsigned char>(text[start - 1]))) --start;
    std::size_t end = at + 1;
    while (end < text.size() && domain_char(static_cast<unsigned char>(text[end]))) ++end;
    if (start == at) continue;  // nothing before the @: not an address
    // A URI's user ("postgresql://bulkmail@db.example.com"): a login, not a person's address.
    std::size_t user = start;
    while (user < at && text[user] == '/') ++user;
    if (user >= 3 && text.substr(user - 3, 3) == "://") continue;
    // Trailing dots and colons are punctuation around the address, not part of it.
    while (end > at + 1 && (text[end - 1] == '.' || text[end - 1] == ':')) --end;
    out.append(text, copied, start - copied);
    out += mask_address(text.substr(start, end - start));
    copied = end;
    at = end == 0 ? 0 : end - 1;
  }
  out.append(text, copied);
  return out;
}

}  // namespace bulkmail
