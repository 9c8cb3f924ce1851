// bulkmailctl bounce parse: what the report parser reads in each file, changing nothing. The tool
// an operator uses to see why a bounce or complaint was read the way it was.
#include <iostream>

#include "base/read_file.h"
#include "bounce/report.h"
#include "bounce/report_json.h"
#include "commands.h"

namespace bulkmail::ctl {
namespace {

// One line a file, then one a recipient: "FILE: bounce (reported by mx.example.org)" and
// "  nobody@example.org failed 5.1.1 550 hard: <diagnostic>".
void print_text(const std::string& file, const Report& r) {
  std::cout << file << ": " << to_string(r.kind);
  if (!r.reporting_mta.empty()) std::cout << " (reported by " << r.reporting_mta << ")";
  if (r.kind == ReportKind::complaint) {
    std::cout << ", feedback type " << (r.feedback_type.empty() ? "(none)" : r.feedback_type);
  }
  if (r.original.found && !r.original.message_id.empty())
    std::cout << ", original " << r.original.message_id;
  std::cout << "\n";
  for (const ReportRecipient& x : r.recipients) {
    std::cout << "  " << x.address << " " << (x.action.empty() ? "-" : x.action) << " "
              << (x.status.empty() ? "-" : x.status) << " " << x.smtp_code << " "
              << to_string(x.bounce_class);
    if (!x.diagnostic.empty()) std::cout << ": " << x.diagnostic;
    std::cout << "\n";
  }
  for (const auto& rcpt : r.original_rcpt_to) std::cout << "  complainant " << rcpt << "\n";
  if (!r.note.empty()) std::cout << "  note: " << r.note << "\n";
}

void cmd_bounce_parse(Context&, const Options& opts) {
  bool failed = false;
  for (const std::string& file : opts.files) {
    auto text = read_file(file);
    Result<Report> r = text ? parse_report(*text) : Result<Report>(text.error());
    if (!r) {
      // Not a mail message at all, or unreadable: said per file, the others still read.
      std::cerr << "bulkmailctl: " << file << ": " << r.error().message << "\n";
      failed = true;
      continue;
    }
    if (opts.json) {
      nlohmann::json j = report_json(*r);
      j["file"] = file;
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      print_text(file, *r);
    }
  }
  if (failed) throw ExitCode{kExitFailure};
}

}  // namespace

void add_bounce_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* bounce = app.add_subcommand("bounce", "read bounces and complaints that come back by mail");
  bounce->require_subcommand(1);
  auto* parse = bounce->add_subcommand(
      "parse", "print what each report says (kind, recipients, status, class); changes nothing");
  parse->add_option("FILE", opts.files, "one message a file (a DSN, an ARF report, a notice)")
      ->required()
      ->check(CLI::ExistingFile);
  parse->add_flag("--json", opts.json, "one JSON object a file");
  commands.add(parse, cmd_bounce_parse);
}

}  // namespace bulkmail::ctl
