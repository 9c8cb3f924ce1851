// Addresses as they come from import files, the API and the config: RFC 5321 syntax, international
// domains through libidn2, one normalized spelling.
//
// Properties: a normalized address parses again to itself (the queue's and the suppression list's
// key is stable); its domain passes parse_domain unchanged; it holds no white space or control
// character but a quoted space (nothing in it can break a header); a log line quoting it shows it
// masked.
#include <string>

#include "base/address.h"
#include "base/text.h"
#include "fuzz_check.h"

using namespace bulkmail;

namespace {

void check_normalized(const Address& a) {
  std::string key = a.str();
  FUZZ_CHECK(key.size() <= 254);
  // ASCII only (SMTPUTF8 is not supported; domains in A-label form), a space only when quoted.
  for (unsigned char c : key) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
  if (a.local.front() != '"') FUZZ_CHECK(a.local.find(' ') == std::string::npos);
  FUZZ_CHECK(a.domain.find(' ') == std::string::npos);
  auto again = parse_address(key);
  FUZZ_CHECK(again);
  FUZZ_CHECK(again.value() == a);
  auto domain = parse_domain(a.domain);
  FUZZ_CHECK(domain);
  FUZZ_CHECK(domain.value() == a.domain);
  if (a.local.size() >= 2) {
    // Masked: what a log shows before the '@' is the local part's first character, then "***".
    std::string masked = mask_address(key);
    FUZZ_CHECK(masked.substr(0, masked.rfind('@')) == a.local.substr(0, 1) + "***");
    // As a relay quotes it in a reply: the same line with the address masked.
    if (a.local.front() != '"') {
      FUZZ_CHECK(mask_addresses_in("550 5.1.1 <" + key + ">: no such user") ==
                 "550 5.1.1 <" + masked + ">: no such user");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view in = fuzz::text(data, size);
  if (auto a = parse_address(in)) check_normalized(a.value());
  if (auto m = parse_mailbox(in)) {
    check_normalized(m.value().address);
    FUZZ_CHECK(!has_control_chars(m.value().display_name));
  }
  // An error never repeats the part before the '@' (errors are logged, and it names a person).
  // Checked through a '#' there: allowed unquoted, so no error is about it, no error text has
  // one of its own, and with none after the '@' (a label at fault may be quoted) only a copy of
  // the local part could put one in the error.
  std::size_t at = in.rfind('@');
  if (at != std::string_view::npos && in.substr(0, at).find('#') != std::string_view::npos &&
      in.substr(at + 1).find('#') == std::string_view::npos) {
    auto a = parse_address(in);
    if (!a) FUZZ_CHECK(a.error().message.find('#') == std::string::npos);
  }
  mask_addresses_in(in);
  return 0;
}
