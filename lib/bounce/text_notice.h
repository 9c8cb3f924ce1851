// Plain-text notices: qmail's (and Yahoo's, built on it), Exim's, Sendmail's and Postfix's. Each
// reader first finds its format's own introduction near the top, then takes addresses only from
// the failure statement that follows it, and stops at the line that introduces the copy of the
// message: nothing in the quoted message is ever read as a failure.
#pragma once

#include <string_view>

#include "bounce/report.h"

namespace bulkmail::bounce {

// Reads a notice's text into `r`: qmail, Exim, Sendmail, then Postfix, each format in turn. The
// one that recognises the notice adds its recipients (within limits.max_recipients) and sets
// r.kind from them. `copy` is set only by the one that recognised the notice: the text after the
// line that introduces the returned message, a view into `text`. `from_mail_system` (the
// message's headers pass from_mail_system(), bounce/auto_reply.h) lets a Sendmail notice
// without its "The original message was received at" introduction be read.
void read_notice(std::string_view text, const ReportLimits& limits, Report& r,
                 std::string_view& copy, bool from_mail_system = false);

}  // namespace bulkmail::bounce
