#include "bounce/bounce_class.h"

#include <optional>
#include <span>

#include "base/text.h"

namespace bulkmail {
namespace {

struct Code {
  int klass = 0, subject = 0, detail = 0;
  std::size_t end = 0;  // just past the code in the text it was read from
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// 1-3 digits at s[i], advancing i past them; -1 when there are none or more than three.
int read_number(std::string_view s, std::size_t& i) {
  std::size_t start = i;
  int v = 0;
  while (i < s.size() && is_digit(s[i]) && i - start < 4) v = v * 10 + (s[i++] - '0');
  std::size_t n = i - start;
  return n == 0 || n > 3 ? -1 : v;
}

// "C.S.D" starting at s[i], not followed by more of a dotted run or a letter or digit.
std::optional<Code> code_at(std::string_view s, std::size_t i) {
  if (i + 1 >= s.size() || (s[i] != '2' && s[i] != '4' && s[i] != '5') || s[i + 1] != '.')
    return {};
  Code c;
  c.klass = s[i] - '0';
  std::size_t j = i + 2;
  c.subject = read_number(s, j);
  if (c.subject < 0 || j >= s.size() || s[j] != '.') return {};
  ++j;
  c.detail = read_number(s, j);
  if (c.detail < 0) return {};
  if (j < s.size()) {
    char next = s[j];
    if (is_alnum(next)) return {};
    if (next == '.' && j + 1 < s.size() && is_digit(s[j + 1])) return {};  // 192.0.2.1
  }
  c.end = j;
  return c;
}

// The Status field's code: its first word, when that is a code and nothing more.
std::optional<Code> parse_status(std::string_view status) {
  status = trim(status);
  std::size_t end = status.find_first_of(" \t(;");
  std::string_view word = status.substr(0, end);
  auto c = code_at(word, 0);
  if (!c || c->end != word.size()) return {};
  return c;
}

std::optional<Code> first_code_in(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && (is_alnum(text[i - 1]) || text[i - 1] == '.')) continue;
    if (auto c = code_at(text, i)) return c;
  }
  return {};
}

// A reply code 2yz, 4yz or 5yz (y 0-5) at s[i], followed by a space, a hyphen, the end, or
// (when `colon` allows it, at the start of a text: Yahoo's "554: delivery error") a colon.
int reply_code_at(std::string_view s, std::size_t i, bool colon) {
  if (i + 3 > s.size()) return 0;
  char a = s[i], b = s[i + 1], c = s[i + 2];
  if ((a != '2' && a != '4' && a != '5') || b < '0' || b > '5' || !is_digit(c)) return 0;
  if (i + 3 < s.size()) {
    char next = s[i + 3];
    if (next != ' ' && next != '-' && next != '\t' && !(colon && next == ':')) return 0;
  }
  return (a - '0') * 100 + (b - '0') * 10 + (c - '0');
}

// `phrase` in `lower` as whole words: no letter or digit right before or after it.
bool has_phrase(std::string_view lower, std::string_view phrase) {
  for (std::size_t pos = lower.find(phrase); pos != std::string_view::npos;
       pos = lower.find(phrase, pos + 1)) {
    std::size_t end = pos + phrase.size();
    if ((pos == 0 || !is_alnum(lower[pos - 1])) && (end == lower.size() || !is_alnum(lower[end])))
      return true;
  }
  return false;
}

bool has_any(std::string_view lower, std::span<const std::string_view> phrases) {
  for (std::string_view p : phrases)
    if (has_phrase(lower, p)) return true;
  return false;
}

// A dead-address phrase that is about the recipient: one with the word "sender" before it
// ("Sender domain does not exist") is about the sender's own address and does not count.
bool has_dead_address(std::string_view lower, std::span<const std::string_view> phrases) {
  std::size_t sender = std::string_view::npos;
  for (std::size_t pos = lower.find("sender"); pos != std::string_view::npos;
       pos = lower.find("sender", pos + 1)) {
    std::size_t end = pos + 6;
    if ((pos == 0 || !is_alnum(lower[pos - 1])) && (end == lower.size() || !is_alnum(lower[end]))) {
      sender = pos;
      break;
    }
  }
  for (std::string_view p : phrases) {
    for (std::size_t pos = lower.find(p); pos != std::string_view::npos;
         pos = lower.find(p, pos + 1)) {
      std::size_t end = pos + p.size();
      if ((pos == 0 || !is_alnum(lower[pos - 1])) &&
          (end == lower.size() || !is_alnum(lower[end])) &&
          (sender == std::string_view::npos || pos < sender))
        return true;
    }
  }
  return false;
}

// Blocklists and reputation: checked first, because such a text often also says "mailbox
// unavailable" or "rejected", and it is the sender that is refused.
constexpr std::string_view kBlocklist[] = {
    "spamhaus",   "spamcop",      "barracuda",   "barracudacentral", "sorbs",
    "spamrats",   "blacklist",    "blacklisted", "blocklist",        "blocklisted",
    "block list", "black list",   "denylist",    "denylisted",       "dnsbl",
    "rbl",        "reputation",   "is listed",   "listed at",        "listed on",
    "listed by",  "blocked using"};

constexpr std::string_view kDeadAddress[] = {
    "user unknown",
    "unknown user",
    "unknown recipient",
    "recipient unknown",
    "addressee unknown",
    "no such user",
    "no such recipient",
    "no such mailbox",
    "no such account",
    "no such person",
    "no such address",
    "invalid recipient",
    "invalid mailbox",
    "recipient not found",
    "user not found",
    "mailbox not found",
    "address not found",
    "recipientnotfound",
    "recipnotfound",
    "mailbox unavailable",
    "mailbox does not exist",
    "does not exist",
    "doesn't exist",
    "no mailbox",
    "not a valid mailbox",
    "bad destination mailbox address",
    "unknown or illegal alias",
    "unrouteable address",
    "unroutable address",
    "unrouteable mail domain",
    "host or domain name not found",
    "domain not found",
    "no such domain",
    "account disabled",
    "account is disabled",
    "account has been disabled",
    "tried to reach is disabled",
    "mailbox disabled",
    "mailbox is disabled",
    "mailbox is inactive",
    "account inactive",
    "account is inactive",
    "inactive account",
    "deactivated",
    "user doesn't have a",
    "not our customer",
};

constexpr std::string_view kFullOrLater[] = {
    "mailbox full",       "mailbox is full",    "mailbox quota",
    "over quota",         "overquota",          "quota exceeded",
    "exceeded storage",   "storage allocation", "insufficient storage",
    "mailbox size limit", "message too large",  "message is too large",
    "message too big",    "message is too big", "message size exceeds",
    "too large",          "size limit",         "retry timeout exceeded",
    "try again later",    "temporarily",        "temporary failure",
    "greylisted",         "greylisting"};

constexpr std::string_view kRefusal[] = {"blocked",       "policy",         "policies",
                                         "spam",          "not authorized", "unauthorized",
                                         "not permitted", "access denied",  "denied",
                                         "prohibited",    "dmarc",          "spf",
                                         "dkim",          "authentication", "virus",
                                         "malware",       "phishing",       "content rejected"};

std::optional<BounceClass> by_status(const Code& c) {
  if (c.klass == 2) return BounceClass::unknown;
  if (c.klass == 4) return BounceClass::soft;
  switch (c.subject) {
    case 1:
      if ((c.detail >= 1 && c.detail <= 4) || c.detail == 6 || c.detail == 10)
        return BounceClass::hard;
      if (c.detail == 7 || c.detail == 8) return BounceClass::policy;
      return {};
    case 2:
      if (c.detail == 1) return BounceClass::hard;
      if (c.detail == 2 || c.detail == 3) return BounceClass::soft;
      return {};
    case 3:
      if (c.detail == 1 || c.detail == 4) return BounceClass::soft;
      return {};
    case 7:
      if (c.detail == 17 || c.detail == 18) return BounceClass::hard;
      return BounceClass::policy;
    default:
      return {};
  }
}

}  // namespace

std::string_view to_string(BounceClass c) {
  switch (c) {
    case BounceClass::hard:
      return "hard";
    case BounceClass::soft:
      return "soft";
    case BounceClass::policy:
      return "policy";
    case BounceClass::unknown:
      break;
  }
  return "unknown";
}

BounceClass classify_bounce(std::string_view status, int smtp_code, std::string_view diagnostic,
                            std::string_view action) {
  std::string act = to_lower_ascii(trim(action));
  act = act.substr(0, act.find_first_of(" \t("));
  if (act == "delayed") return BounceClass::soft;
  if (act == "delivered" || act == "relayed" || act == "expanded") return BounceClass::unknown;

  std::optional<Code> code = parse_status(status);
  if (!code || (code->subject == 0 && code->detail == 0)) {
    // Exim says 5.0.0 for every failure; the remote server's own code is in the diagnostic.
    auto refined = first_code_in(diagnostic);
    if (refined && (!code || refined->klass == code->klass)) code = refined;
  }
  std::string lower = to_lower_ascii(diagnostic);
  if (code && code->klass == 5) {
    // Office 365 says 5.4.1 "Recipient address rejected: Access denied" for an address that is
    // not in the tenant.
    if (code->subject == 4 && code->detail == 1 && has_phrase(lower, "recipient address rejected"))
      return BounceClass::hard;
    // Many servers say 5.7.1 for "user unknown". 5.7.13 is the submitting user's own account
    // (RFC 7372), so it stays policy.
    if (code->subject == 7 && code->detail != 17 && code->detail != 18 && code->detail != 13 &&
        !has_any(lower, kBlocklist) && has_dead_address(lower, kDeadAddress))
      return BounceClass::hard;
  }
  if (code) {
    if (auto c = by_status(*code)) return *c;
  }

  if (smtp_code >= 400 && smtp_code <= 499) return BounceClass::soft;
  if (smtp_code == 552) {
    // Storage exceeded, unless the text says the message or the sender was refused.
    if (has_any(lower, kBlocklist)) return BounceClass::policy;
    if (has_any(lower, kFullOrLater)) return BounceClass::soft;
    if (has_any(lower, kRefusal)) return BounceClass::policy;
    return BounceClass::soft;
  }

  if (has_any(lower, kBlocklist)) return BounceClass::policy;
  if (has_dead_address(lower, kDeadAddress)) return BounceClass::hard;
  if (has_any(lower, kFullOrLater)) return BounceClass::soft;
  if (has_any(lower, kRefusal)) return BounceClass::policy;
  return BounceClass::unknown;
}

std::string enhanced_status_in(std::string_view text) {
  auto c = first_code_in(text);
  if (!c) return {};
  return std::to_string(c->klass) + "." + std::to_string(c->subject) + "." +
         std::to_string(c->detail);
}

int smtp_code_in(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  if (int code = reply_code_at(text, i, true)) return code;
  for (; i < text.size(); ++i) {
    if (i > 0 && (is_alnum(text[i - 1]) || text[i - 1] == '.' || text[i - 1] == '-')) continue;
    if (int code = reply_code_at(text, i, false)) return code;
  }
  return 0;
}

bool throttles_the_sender(std::string_view reply) {
  std::string status = enhanced_status_in(reply);
  if (status.size() >= 3 && status[0] == '4') {
    std::string_view subject(status.data() + 2, status.size() - 2);
    if (subject.starts_with("3.") || subject.starts_with("4.") || subject == "5.3") return true;
    if (subject.starts_with("7.") && subject != "7.1") return true;
  }
  static constexpr std::string_view kWords[] = {
      "too many",   "rate", "rate limit",     "rate limited", "ratelimited", "throttled",
      "throttling", "busy", "limit exceeded", "volume",       "too fast",    "slow down"};
  return has_any(to_lower_ascii(reply), kWords);
}

}  // namespace bulkmail
