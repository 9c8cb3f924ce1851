// ARF (RFC 5965): one block of fields. Original-Rcpt-To and Reported-Domain may repeat.
// complaint_suppresses and looks_redacted (report.h) are defined beside the reader.
#pragma once

#include <string_view>

#include "bounce/report.h"

namespace bulkmail::bounce {

// Reads the body of a message/feedback-report part into `r`: kind complaint, the first of each
// field, every Original-Rcpt-To (within limits.max_recipients) and Reported-Domain (up to 16),
// and rcpt_redacted. Original-Rcpt-To is read as an address list: each entry's addr-spec without
// <> or display name ("<a@x>, Name <b@y>" gives a@x and b@y); an entry that is not one address
// (a group's name, "undisclosed-recipients:;") is dropped. rcpt_redacted is set when any entry
// with an '@' looks redacted (looks_redacted), kept or not.
void read_arf(std::string_view body, const ReportLimits& limits, Report& r);

}  // namespace bulkmail::bounce
