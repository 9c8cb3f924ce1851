// DSN (RFC 3464, RFC 6533): the per-message fields, then one group per recipient.
#pragma once

#include <string_view>

#include "bounce/report.h"

namespace bulkmail::bounce {

// Reads the body of a message/delivery-status part, or of a message/global-delivery-status one
// (`global`), into `r`: Reporting-MTA, Arrival-Date, a recipient for each group that names an
// address (within limits.max_recipients), and the kind they make.
// A group whose address, decoded, is not exactly one address (is_one_address) is dropped, and
// Report::note says so. A generic Status (X.0.0, as Exim sends) gives way to a more specific
// code of the same class in the diagnostic.
void read_dsn(std::string_view body, bool global, const ReportLimits& limits, Report& r);

// Whether `a` is exactly one addr-spec as reports give it: one '@' with text on either side, at
// most kMaxAddress bytes, no white space or control characters, none of , < > ; ( ) " \.
// Non-ASCII bytes (UTF-8 addresses) are allowed.
bool is_one_address(std::string_view a);

}  // namespace bulkmail::bounce
