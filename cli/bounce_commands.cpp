// bulkmailctl bounce parse: what the report parser reads in each file, changing nothing. The tool
// an operator uses to see why a bounce or complaint was read the way it was.
// bulkmailctl bounce receive: takes reports in (report_intake.h), one from the MTA's pipe or a
// Maildir's new ones, and acts on them.
#include <syslog.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "base/log.h"
#include "base/read_file.h"
#include "bounce/report.h"
#include "bounce/report_json.h"
#include "commands.h"
#include "context.h"
#include "feedback/report_intake.h"

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

// sysexits(3): what the MTA that ran `bounce receive` does next.
constexpr int kExDataErr = 65;   // not a mail message: bounce it back (to nobody, it is a bounce)
constexpr int kExTempFail = 75;  // try again later: nothing is lost

// The largest report read from a pipe; the rest is read and dropped (the parser reads 10 MiB).
constexpr std::size_t kMaxReportBytes = ReportLimits{}.max_bytes + 1;

// All of standard input, keeping at most kMaxReportBytes of it: the MTA must see it all taken.
std::string read_stdin() {
  std::string out;
  char buf[65536];
  while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
    std::size_t n = static_cast<std::size_t>(std::cin.gcount());
    if (out.size() < kMaxReportBytes) out.append(buf, std::min(n, kMaxReportBytes - out.size()));
  }
  if (std::cin.bad()) throw std::runtime_error("cannot read standard input");
  return out;
}

// What became of one report, for the operator: on stderr (and so in the journal under systemd)
// and, from the MTA's pipe, in the mail log (syslog's mail facility, beside Postfix's own lines:
// Postfix keeps a pipe's output only when it fails). Addresses masked as the config says.
void report_line(const std::string& line, bool to_syslog, LogLevel level) {
  log(level, line);
  if (!to_syslog) return;
  openlog("bulkmailctl", LOG_PID, LOG_MAIL);
  std::string text = log_text(line);
  syslog(level == LogLevel::warning ? LOG_WARNING : LOG_INFO, "%s", text.c_str());
  closelog();
}

LogLevel level_of(const ReportPlan& p, const ReportRecorded& r) {
  if (r.duplicate) return LogLevel::info;
  bool paused = std::any_of(r.applied.begin(), r.applied.end(),
                            [](const FeedbackApplied& a) { return !a.paused_campaign.empty(); });
  bool suspect = p.match.status == MatchStatus::forged || !p.mismatched.empty();
  return paused || suspect ? LogLevel::warning : LogLevel::info;
}

// Runs `body`; a failure of the database or the config ends the run with EX_TEMPFAIL, so that the
// MTA keeps the report and tries again.
template <class Body>
void or_tempfail(Body body) {
  try {
    body();
  } catch (const ExitCode& e) {
    if (e.code == 0 || e.code == kExDataErr) throw;
    std::cerr << "bulkmailctl: bounce receive: the report is kept for a later try\n";
    throw ExitCode{kExTempFail};
  } catch (const std::exception& e) {
    std::cerr << "bulkmailctl: bounce receive: " << e.what()
              << "; the report is kept for a later try\n";
    throw ExitCode{kExTempFail};
  }
}

// The envelope recipient: --recipient, else what Postfix's local(8) sets, else what an MDA wrote.
std::string envelope_recipient(const Options& opts, std::string_view message) {
  if (!opts.recipient.empty()) return opts.recipient;
  for (const char* var : {"ORIGINAL_RECIPIENT", "RECIPIENT"}) {
    const char* v = std::getenv(var);
    if (v && *v) return v;
  }
  return envelope_recipient_in(message);
}

void receive_one(Context& ctx, const Options& opts) {
  std::string message;
  if (opts.file.empty() || opts.file == "-") {
    message = read_stdin();
  } else {
    auto text = read_file(opts.file);
    if (!text) fail(text.error().message, kExitFailure);
    message = std::move(*text);
  }
  or_tempfail([&] {
    const Config& cfg = ctx.cfg();
    configure_logging(cfg.logging);
    ReportIntake intake(cfg, ctx.db(), "bounce-pipe");
    UnixMillis now = now_millis();
    auto plan = intake.prepare(message, envelope_recipient(opts, message), now);
    if (!plan) {
      std::cerr << "bulkmailctl: bounce receive: " << plan.error().message << "\n";
      throw ExitCode{kExDataErr};
    }
    ReportRecorded recorded = intake.commit({&*plan, 1}, now).front();
    report_line(describe(*plan, recorded), opts.file.empty() || opts.file == "-",
                level_of(*plan, recorded));
  });
}

// A Maildir's new/ messages, oldest name first, in batches of opts.batch: each batch read and
// matched, committed in one transaction, and only then its files moved to cur/. A run cut off
// between the commit and the moves takes the same files in again next time, and the store knows
// them by their digest: every report counts once.
void receive_maildir(Context& ctx, const Options& opts) {
  namespace fs = std::filesystem;
  fs::path dir(opts.maildir);
  fs::path fresh = dir / "new", seen = dir / "cur";
  if (!fs::is_directory(fresh) || !fs::is_directory(seen)) {
    fail(opts.maildir + ": not a Maildir (it needs new/ and cur/)", kExitFailure);
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fresh)) {
    std::string name = e.path().filename().string();
    if (!name.empty() && name[0] != '.' && e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  auto move_to_cur = [&](const fs::path& f) {
    std::string name = f.filename().string();
    if (name.find(":2,") == std::string::npos) name += ":2,S";
    fs::rename(f, seen / name);
  };
  std::size_t taken = 0, refused = 0, duplicates = 0;
  or_tempfail([&] {
    const Config& cfg = ctx.cfg();
    configure_logging(cfg.logging);
    ReportIntake intake(cfg, ctx.db(), "bounce-maildir");
    for (std::size_t at = 0; at < files.size(); at += static_cast<std::size_t>(opts.batch)) {
      std::size_t end = std::min(files.size(), at + static_cast<std::size_t>(opts.batch));
      UnixMillis now = now_millis();
      std::vector<ReportPlan> plans;
      std::vector<fs::path> planned, not_mail;
      for (std::size_t i = at; i < end; ++i) {
        auto text = read_file(files[i].string());
        if (!text) throw std::runtime_error(text.error().message);
        auto plan = intake.prepare(*text, envelope_recipient_in(*text), now);
        if (!plan) {
          log_warning(files[i].string() + ": not a mail message (" + plan.error().message +
                      "); moved to cur/ untouched");
          not_mail.push_back(files[i]);
          continue;
        }
        plans.push_back(std::move(*plan));
        planned.push_back(files[i]);
      }
      auto recorded = intake.commit(plans, now);
      for (std::size_t i = 0; i < plans.size(); ++i) {
        log(level_of(plans[i], recorded[i]),
            planned[i].filename().string() + ": " + describe(plans[i], recorded[i]));
        duplicates += recorded[i].duplicate ? 1 : 0;
        move_to_cur(planned[i]);
      }
      for (const fs::path& f : not_mail) move_to_cur(f);
      taken += plans.size();
      refused += not_mail.size();
    }
  });
  std::cout << taken << " report" << (taken == 1 ? "" : "s") << " taken in from " << opts.maildir
            << " (" << duplicates << " taken in before), " << refused << " not mail\n";
}

void cmd_bounce_receive(Context& ctx, const Options& opts) {
  if (!opts.maildir.empty()) return receive_maildir(ctx, opts);
  receive_one(ctx, opts);
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

  auto* receive = bounce->add_subcommand(
      "receive",
      "take in one report from the MTA (standard input or FILE), or a Maildir's new ones, and "
      "act on it; exits 0 when taken in (also when ignored or unmatched), 75 when the database "
      "or config failed (the MTA tries again), 65 when the input is not mail");
  auto* file = receive->add_option("FILE", opts.file, "the report; - or none: standard input");
  auto* maildir = receive->add_option(
      "--maildir", opts.maildir,
      "take in every message in DIR/new and move each to DIR/cur once committed");
  maildir->excludes(file);
  receive
      ->add_option("--recipient", opts.recipient,
                   "the envelope recipient (Postfix pipe: ${recipient}); default "
                   "$ORIGINAL_RECIPIENT, $RECIPIENT, then Delivered-To or X-Original-To")
      ->excludes(maildir);
  receive->add_option("--batch", opts.batch, "--maildir: reports per transaction (default 200)")
      ->check(CLI::Range(1, 10000))
      ->needs(maildir);
  commands.add(receive, cmd_bounce_receive);
}

}  // namespace bulkmail::ctl
