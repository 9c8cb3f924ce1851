// The RFC 5322 / MIME building blocks of a message: header encoding and folding (RFC 2047
// encoded-words for non-ASCII text), quoted-printable bodies (RFC 2045), and dates. Output uses
// CRLF line ends and never a line over 998 octets.
#pragma once

#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/result.h"

namespace bulkmail {

// Quoted-printable with CRLF line ends and lines of at most 76 characters. Input lines may end in
// LF or CRLF. A line that would begin with '.' or "From " is encoded so that no transport mangles
// it.
std::string quoted_printable(std::string_view text);
// The same, appended to `out` (no intermediate copy when building a message).
void append_quoted_printable(std::string& out, std::string_view text);

// One header field, "Name: value\r\n", with an unstructured value (Subject, a List-Id phrase):
// printable ASCII is folded at spaces to stay within 78 characters where it can; anything else is
// sent as UTF-8 encoded-words. Refuses values holding CR, LF or other control characters.
Result<std::string> unstructured_header(std::string_view name, std::string_view value);

// "Display Name <local@domain>" for From, To, Reply-To: the display name quoted or encoded as
// needed. An empty display name gives the bare address.
Result<std::string> mailbox_text(std::string_view display_name, std::string_view address);

// A structured header field whose value is already safe ASCII (addresses, URIs, ids), folded
// before a space to stay within 78 characters where it can ("<a>, <b>" folds after the comma; a
// value without spaces stays on one line). Refuses values holding CR, LF or other control
// characters, and a line over 998 octets.
Result<std::string> structured_header(std::string_view name, std::string_view value);

// "Wed, 25 Nov 2026 21:24:16 +0000"
std::string rfc5322_date(UnixMillis t);

// rfc5322_date formatted once per second: a sender dates thousands of messages within the same
// second. Each composing thread has its own (in its ComposeScratch); not thread-safe.
class DateCache {
 public:
  // Appends rfc5322_date(t) to `out`.
  void append(std::string& out, UnixMillis t);

 private:
  UnixMillis second_ = 0;
  std::string text_;  // the date of second_, or empty before the first call
};

}  // namespace bulkmail
