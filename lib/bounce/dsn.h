// DSN (RFC 3464, RFC 6533): the per-message fields, then one group per recipient.
#pragma once

#include <string_view>

#include "bounce/report.h"

namespace bulkmail::bounce {

// Reads the body of a message/delivery-status part, or of a message/global-delivery-status one
// (`global`), into `r`: Reporting-MTA, Arrival-Date, a recipient for each group that names an
// address (within limits.max_recipients), and the kind they make.
void read_dsn(std::string_view body, bool global, const ReportLimits& limits, Report& r);

}  // namespace bulkmail::bounce
