#include "bounce/report_json.h"

namespace bulkmail {

nlohmann::json report_json(const Report& r) {
  using json = nlohmann::json;
  json recipients = json::array();
  for (const ReportRecipient& x : r.recipients) {
    recipients.push_back({{"address", x.address},
                          {"original_recipient", x.original_recipient},
                          {"action", x.action},
                          {"status", x.status},
                          {"smtp_code", x.smtp_code},
                          {"diagnostic", x.diagnostic},
                          {"remote_mta", x.remote_mta},
                          {"class", std::string(to_string(x.bounce_class))}});
  }
  json out = {{"kind", std::string(to_string(r.kind))},
              {"reporting_mta", r.reporting_mta},
              {"recipients", std::move(recipients)}};
  if (r.original.found) {
    out["original"] = {{"message_id", r.original.message_id},
                       {"list_id", r.original.list_id},
                       {"list_unsubscribe", r.original.list_unsubscribe},
                       {"return_path", r.original.return_path}};
  } else {
    out["original"] = nullptr;
  }
  if (r.kind == ReportKind::complaint) {
    out["feedback_type"] = r.feedback_type;
    out["original_rcpt_to"] = r.original_rcpt_to;
    out["rcpt_redacted"] = r.rcpt_redacted;
    out["original_mail_from"] = r.original_mail_from;
    out["arrival_date"] = r.arrival_date;
  }
  if (!r.note.empty()) out["note"] = r.note;
  return out;
}

}  // namespace bulkmail
