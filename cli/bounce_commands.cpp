// bulkmailctl bounce parse: what the report parser reads in each file, changing nothing. The tool
// an operator uses to see why a bounce or complaint was read the way it was.
// bulkmailctl bounce receive: takes reports in (report_intake.h), one from the MTA's pipe or a
// Maildir's new ones, and acts on them. Its exit status is for the MTA or the timer that runs it
// (sysexits(3)): 0 taken in, 65 not mail, 75 try again later (nothing was lost).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/read_file.h"
#include "base/unique_fd.h"
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
  // A line a file, over thousands of files: written 64 KiB at a time, not a pipe's 4 KiB.
  static char out_buffer[64 * 1024];
  std::setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);
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

// The largest report read; the rest is left unread, or from a pipe read and dropped (the parser
// reads 10 MiB, and one byte more tells it the report was longer).
constexpr std::size_t kMaxReportBytes = ReportLimits{}.max_bytes + 1;

// All of standard input, keeping at most kMaxReportBytes of it: the MTA must see it all taken.
// read(2), not std::cin: a stream ends a failing read as it ends the input, and a report the
// system could not read would look empty (not mail, 65) rather than unread (75).
std::string read_stdin() {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw std::runtime_error(std::string("cannot read standard input: ") + std::strerror(errno));
    }
    if (n == 0) return out;
    auto got = static_cast<std::size_t>(n);
    if (out.size() < kMaxReportBytes) out.append(buf, std::min(got, kMaxReportBytes - out.size()));
  }
}

// The report `bounce receive` was given: FILE, or standard input for none or "-". A file that
// cannot be read (a typo in the command line, its permissions) ends the run with 75: it is not a
// report that is not mail.
std::string read_report(const std::string& file) {
  if (file.empty() || file == "-") return read_stdin();
  auto text = read_file_prefix(file, kMaxReportBytes);
  if (!text) fail("bounce receive: " + text.error().message, kExitTempFail);
  return std::move(*text);
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

// "bounce from mx.example.net (return path) names message 42, which is still being sent: kept for
// a later try": a report that came back before its message was recorded sent (retry_later()).
std::string still_being_sent(const ReportPlan& p) {
  std::string out(to_string(p.report.kind));
  if (!p.report.reporting_mta.empty()) out += " from " + p.report.reporting_mta;
  out += " (" + p.match.via + ") names message ";
  out += p.match.message ? std::to_string(p.match.message->id) : std::string("?");
  return out + ", which is still being sent: kept for a later try";
}

// Runs `body`; a failure of the database or the config ends the run with EX_TEMPFAIL, so that the
// MTA keeps the report and tries again. An ExitCode of 0, 65 or 75 passes as it is: whatever
// threw it has said why.
template <class Body>
void or_tempfail(Body body) {
  try {
    body();
  } catch (const ExitCode& e) {
    if (e.code == 0 || e.code == kExitDataErr || e.code == kExitTempFail) throw;
    std::cerr << "bulkmailctl: bounce receive: the report is kept for a later try\n";
    throw ExitCode{kExitTempFail};
  } catch (const std::exception& e) {
    std::cerr << "bulkmailctl: bounce receive: " << log_text(e.what())
              << "; the report is kept for a later try\n";
    throw ExitCode{kExitTempFail};
  }
}

// The envelope recipient: --recipient, else what Postfix's local(8) sets, else what an MDA wrote.
std::vector<std::string> envelope_recipients(const Options& opts, std::string_view message) {
  if (!opts.recipient.empty()) return {opts.recipient};
  for (const char* var : {"ORIGINAL_RECIPIENT", "RECIPIENT"}) {
    const char* v = std::getenv(var);
    if (v && *v) return {v};
  }
  return envelope_recipients_in(message);
}

void receive_one(Context& ctx, const Options& opts) {
  or_tempfail([&] {
    std::string message = read_report(opts.file);
    const Config& cfg = ctx.cfg();
    configure_logging(cfg.logging);
    ReportIntake intake(cfg, ctx.db(), "bounce-pipe");
    UnixMillis now = now_millis();
    auto plan = intake.prepare(message, envelope_recipients(opts, message), now);
    if (!plan) {
      std::cerr << "bulkmailctl: bounce receive: " << plan.error().message << "\n";
      throw ExitCode{kExitDataErr};
    }
    if (plan->retry_later()) {
      std::cerr << "bulkmailctl: bounce receive: " << log_text(still_being_sent(*plan)) << "\n";
      throw ExitCode{kExitTempFail};
    }
    ReportRecorded recorded = intake.commit({&*plan, 1}, now).front();
    report_line(describe(*plan, recorded), opts.file.empty() || opts.file == "-",
                level_of(*plan, recorded));
  });
}

// --- bounce receive --maildir ------------------------------------------------------------------

namespace fs = std::filesystem;

// A Maildir held for one run: its new/ and cur/, and an exclusive flock(2) on DIR itself, held
// until the run ends, so that a second run (a timer's, an operator's) waits for the first rather
// than taking the same files in beside it.
struct Maildir {
  fs::path fresh, seen;  // DIR/new, DIR/cur
  UniqueFd lock;
};

// Opens and locks `dir`. Refused (75, the mail stays where it is): a folder without new/ and cur/,
// or whose new/ and cur/ are on different file systems: there a file could be taken in and then
// not moved (rename(2) fails with EXDEV), and every later run would find it again.
Maildir open_maildir(const std::string& dir) {
  Maildir m{fs::path(dir) / "new", fs::path(dir) / "cur", UniqueFd()};
  struct stat fresh {};
  struct stat seen {};
  if (::stat(m.fresh.c_str(), &fresh) != 0 || ::stat(m.seen.c_str(), &seen) != 0 ||
      !S_ISDIR(fresh.st_mode) || !S_ISDIR(seen.st_mode)) {
    fail(dir + ": not a Maildir (it needs new/ and cur/)", kExitTempFail);
  }
  if (fresh.st_dev != seen.st_dev) {
    fail(dir +
             ": new/ and cur/ are on different file systems: files could not be moved from one "
             "to the other once taken in; nothing taken in",
         kExitTempFail);
  }
  m.lock = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!m.lock) fail(dir + ": cannot open: " + std::strerror(errno), kExitTempFail);
  if (::flock(m.lock.get(), LOCK_EX | LOCK_NB) == 0) return m;
  if (errno == EWOULDBLOCK) {
    std::cerr << "bulkmailctl: bounce receive: another bounce receive is taking " << dir
              << " in: waiting for it to finish\n";
  }
  while (::flock(m.lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) fail(dir + ": cannot lock: " + std::strerror(errno), kExitTempFail);
  }
  return m;
}

// How a run went, for its last line.
struct MaildirTally {
  std::size_t taken = 0, duplicates = 0, not_mail = 0;
  std::size_t kept = 0;     // about a message still being sent: left in new/ for a later run
  std::size_t skipped = 0;  // not read (unreadable, not a regular file): left where they are
};

// new/'s files to take in, oldest name first (a Maildir name starts with the time it arrived).
// Dot files are not mail. Anything else that is not a regular file itself, judged without
// following links (a symbolic link, which could lead anywhere; a folder; a FIFO), is left where it
// is, with a warning.
std::vector<fs::path> list_new(const fs::path& fresh, MaildirTally& tally) {
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(fresh)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code ec;
    fs::file_type type = e.symlink_status(ec).type();
    if (type == fs::file_type::regular) {
      files.push_back(e.path());
      continue;
    }
    if (ec == std::errc::no_such_file_or_directory) continue;  // gone since it was listed
    std::string what = ec                                 ? ec.message()
                       : type == fs::file_type::symlink   ? "a symbolic link"
                       : type == fs::file_type::directory ? "a folder"
                       : type == fs::file_type::fifo      ? "a FIFO"
                                                          : "a device or socket";
    log_warning("new/" + name + ": not a regular file (" + what + "): skipped, left where it is");
    ++tally.skipped;
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Moves a file taken in to cur/, with the Maildir "seen" flag when it has no flags yet. A file no
// longer in new/ was moved by someone else: nothing to do. Any other failure throws: the reports
// are committed, and the next run knows them by their digest.
void move_to_cur(const fs::path& file, const fs::path& seen) {
  std::string name = file.filename().string();
  if (name.find(":2,") == std::string::npos) name += ":2,S";
  std::error_code ec;
  fs::rename(file, seen / name, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw fs::filesystem_error("cannot move a report to cur/", file, seen / name, ec);
  }
}

// One batch: each file read and matched, those that ask something of the store committed in one
// transaction, and only then moved to cur/ with the files that are not mail. A file that cannot
// be read, or names a message still being sent, stays in new/ for a later run.
void take_in_batch(ReportIntake& intake, std::span<const fs::path> files, const fs::path& seen,
                   MaildirTally& tally) {
  UnixMillis now = now_millis();
  std::vector<ReportPlan> plans;
  std::vector<fs::path> planned, not_mail;
  for (const fs::path& f : files) {
    std::string name = "new/" + f.filename().string();
    auto text = read_file_prefix(f, kMaxReportBytes, FileKinds::regular);
    if (!text) {
      log_warning(text.error().message + ": skipped, left where it is");
      ++tally.skipped;
      continue;
    }
    auto plan = intake.prepare(*text, envelope_recipients_in(*text), now);
    if (!plan) {
      log_warning(name + ": not a mail message (" + plan.error().message +
                  "); moved to cur/ untouched");
      not_mail.push_back(f);
    } else if (plan->retry_later()) {
      log_warning(name + ": " + still_being_sent(*plan) + " (left in new/)");
      ++tally.kept;
    } else {
      plans.push_back(std::move(*plan));
      planned.push_back(f);
    }
  }
  auto recorded = intake.commit(plans, now);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    log(level_of(plans[i], recorded[i]),
        planned[i].filename().string() + ": " + describe(plans[i], recorded[i]));
    tally.duplicates += recorded[i].duplicate ? 1 : 0;
    move_to_cur(planned[i], seen);
  }
  for (const fs::path& f : not_mail) move_to_cur(f, seen);
  tally.taken += plans.size();
  tally.not_mail += not_mail.size();
}

// A Maildir's new/ messages, oldest name first, in batches of opts.batch: each batch read and
// matched, committed in one transaction, and only then its files moved to cur/. A run cut off
// between the commit and the moves takes the same files in again next time, and the store knows
// them by their digest: every report counts once. Exits 75 when any file stayed in new/ (kept for
// a later try, or skipped), so that a timer or cron shows it.
void receive_maildir(Context& ctx, const Options& opts) {
  MaildirTally tally;
  or_tempfail([&] {
    const Config& cfg = ctx.cfg();
    configure_logging(cfg.logging);
    Maildir box = open_maildir(opts.maildir);
    std::vector<fs::path> files = list_new(box.fresh, tally);
    ReportIntake intake(cfg, ctx.db(), "bounce-maildir");
    auto batch = static_cast<std::size_t>(opts.batch);
    for (std::size_t at = 0; at < files.size(); at += batch) {
      std::size_t n = std::min(batch, files.size() - at);
      take_in_batch(intake, std::span<const fs::path>(files).subspan(at, n), box.seen, tally);
    }
  });
  std::cout << tally.taken << " report" << (tally.taken == 1 ? "" : "s") << " taken in from "
            << opts.maildir << " (" << tally.duplicates << " taken in before), " << tally.not_mail
            << " not mail";
  if (tally.kept > 0) std::cout << ", " << tally.kept << " kept for a later try";
  if (tally.skipped > 0) std::cout << ", " << tally.skipped << " skipped";
  std::cout << "\n";
  std::size_t left = tally.kept + tally.skipped;
  if (left == 0) return;
  std::cout.flush();
  std::cerr << "bulkmailctl: bounce receive: " << left << " file" << (left == 1 ? "" : "s")
            << " left in " << opts.maildir << "/new for a later run (see the warnings above)\n";
  throw ExitCode{kExitTempFail};
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
      "act on it; exits 0 when taken in (also when ignored or unmatched), 65 when the input is "
      "not mail, 75 when it is to be tried again (the database, the config, the command line or "
      "the input failed; the report names a message still being sent; --maildir left a file in "
      "new/)");
  auto* file = receive->add_option("FILE", opts.file, "the report; - or none: standard input");
  auto* maildir = receive->add_option(
      "--maildir", opts.maildir,
      "take in every message in DIR/new and move each to DIR/cur once committed (one run at a "
      "time: a second waits for the first)");
  maildir->excludes(file);
  receive
      ->add_option("--recipient", opts.recipient,
                   "the envelope recipient (Postfix pipe: ${recipient}); default "
                   "$ORIGINAL_RECIPIENT, $RECIPIENT, then X-Original-To and Delivered-To")
      ->excludes(maildir);
  receive->add_option("--batch", opts.batch, "--maildir: reports per transaction (default 200)")
      ->check(CLI::Range(1, 10000))
      ->needs(maildir);
  commands.add(receive, cmd_bounce_receive);
}

}  // namespace bulkmail::ctl
