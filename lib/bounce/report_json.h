// A parsed report as JSON, the form `bulkmailctl bounce parse --json` prints: what the parser found
// and how it classified each recipient, so that an operator can see why a report was read the way
// it was.
#pragma once

#include <nlohmann/json.hpp>

#include "bounce/report.h"

namespace bulkmail {

// {"kind", "reporting_mta", "recipients": [{"address", "original_recipient", "action", "status",
// "smtp_code", "diagnostic", "remote_mta", "class"}], "original": {"message_id", "list_id",
// "list_unsubscribe", "return_path"} or null, and for a complaint "feedback_type",
// "original_rcpt_to", "rcpt_redacted", "original_mail_from", "arrival_date"; "note" when the
// parser had something to say (a limit reached, a part it could not read).
nlohmann::json report_json(const Report& report);

}  // namespace bulkmail
