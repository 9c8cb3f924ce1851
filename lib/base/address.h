// Email addresses: RFC 5321 syntax and lengths, international domains in their ASCII (A-label)
// form through libidn2, one normalized spelling for the queue and the suppression list, and the
// masked form that logs show.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace bulkmail {

struct Address {
  std::string local;   // lower-cased ASCII; a quoted local part keeps its quotes
  std::string domain;  // lower-cased A-label form, e.g. "xn--bcher-kva.example"

  // The normalized spelling "local@domain": the key of the queue and the suppression list.
  std::string str() const { return local + "@" + domain; }
  friend bool operator==(const Address&, const Address&) = default;
};

// Parses and normalizes one address. Surrounding white space is ignored. On failure the error says
// what is wrong ("domain label 'a_b' has a character other than a letter, digit or hyphen") and
// never repeats the address, so it is safe to log.
Result<Address> parse_address(std::string_view input);

// Checks and normalizes one domain name, as the part after '@' or on its own (a HELO name, a
// signing domain, a throttled domain): lower-cased, international labels in their A-label form
// ("bücher.example" is "xn--bcher-kva.example"), at most 253 octets, labels of 1-63 letters,
// digits and inner hyphens, at least two labels, the last not all digits. No surrounding white
// space is removed. The error says what is wrong ("the domain has no dot: a public mail domain
// needs one") and quotes at most the label at fault.
Result<std::string> parse_domain(std::string_view domain);

// "Display Name <local@domain>" or a bare address: what the config's `from` holds.
struct Mailbox {
  std::string display_name;  // unquoted UTF-8, may be empty
  Address address;
};
Result<Mailbox> parse_mailbox(std::string_view input);

// "j***@example.com": what logs show of a normalized address unless masking is turned off.
std::string mask_address(std::string_view address);
// `text` with every address-like run in it (local@domain, as relays quote them in replies, or as
// error texts quote input) masked as mask_address does; the rest unchanged. For text from outside
// bulkmail (SMTP replies, request paths, error texts) on its way into a log line.
std::string mask_addresses_in(std::string_view text);

}  // namespace bulkmail
