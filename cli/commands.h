// bulkmailctl's command line: the options every command reads, the table of subcommands, the
// add_*_commands functions that declare each group of subcommands (one file each), and parsing
// and running it. Also the few helpers several of the command files share.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "context.h"

namespace bulkmail::ctl {

// Every option's value, as parsed. Commands share the names (--category, --campaign, ADDRESS):
// only the chosen command's are read.
struct Options {
  std::string config_path;  // --config; empty: $BULKMAIL_CONFIG, then the default path
  std::string category, to, campaign, file, format, address, hashed;
  std::string reason = "manual";   // suppress add --reason
  std::vector<std::string> vars;   // --var KEY=VALUE, in the order given
  std::vector<std::string> files;  // bounce parse FILE...
  bool json = false, force = false, dry_run = false, update = false;
  bool envelope = false;           // preview --envelope
  std::string recipient, maildir;  // bounce receive --recipient, --maildir
  std::string from, to_database;   // store copy --from, --to
  int batch = 200;                 // bounce receive --batch
};

// sysexits(3) statuses of `bounce receive`, which an MTA or a timer reads: the report is not mail
// (bounce it back), or try again later (nothing was lost). bulkmailctl's others are in context.h.
inline constexpr int kExitDataErr = 65;   // EX_DATAERR
inline constexpr int kExitTempFail = 75;  // EX_TEMPFAIL

// Each subcommand declared, with what running it does.
class Commands {
 public:
  using Run = void (*)(Context&, const Options&);

  void add(CLI::App* command, Run run) { commands_.emplace_back(command, run); }

  // Runs the one the command line chose (require_subcommand(1) makes it exactly one).
  void run_chosen(Context& ctx, const Options& opts) const {
    for (const auto& [command, run] : commands_) {
      if (command->parsed()) {
        run(ctx, opts);
        return;
      }
    }
  }

 private:
  std::vector<std::pair<CLI::App*, Run>> commands_;
};

// Each declares its group of subcommands on `app`, binds their options to `opts` and adds them to
// `commands`. main calls them in the order --help lists them.
// queue_commands.cpp: enqueue and import; preview and dkim-record.
void add_queue_commands(CLI::App& app, Options& opts, Commands& commands);
void add_preview_commands(CLI::App& app, Options& opts, Commands& commands);
// status_commands.cpp: status; campaigns, pause, resume, cancel and retry.
void add_status_command(CLI::App& app, Options& opts, Commands& commands);
void add_campaign_commands(CLI::App& app, Options& opts, Commands& commands);
// suppress_commands.cpp: suppress add, remove, list, import and export.
void add_suppress_commands(CLI::App& app, Options& opts, Commands& commands);
// address_commands.cpp: unsubscribe-link, history and forget.
void add_address_commands(CLI::App& app, Options& opts, Commands& commands);
// bounce_commands.cpp: bounce parse and bounce receive.
void add_bounce_commands(CLI::App& app, Options& opts, Commands& commands);
// store_commands.cpp: store copy.
void add_store_commands(CLI::App& app, Options& opts, Commands& commands);

// Parses the command line. Returns the exit status when parsing ends the run (--help, --version,
// bad usage: an unknown subcommand is named as such); nothing when the chosen command is to run.
// Bad usage exits kExitUsage, except for `bounce receive`: kExitTempFail, so that the MTA keeps
// the report while the operator fixes the command line in master.cf.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

// Runs the chosen command with a Context made from opts.config_path; returns the exit status:
// an ExitCode's, or 1 for a database error (or another std::runtime_error), reported on stderr;
// 1 too when standard output could not be written.
int run_command(const Commands& commands, const Options& opts);

// --- shared by several command files (commands.cpp) ------------------------------------------

// --format of an imported file: csv or jsonl, bound to opts.format (empty: by file extension).
void add_format_option(CLI::App* command, Options& opts);

// `input` as a normalized address; a bad one fails the run ("bad address: ...").
std::string normalized_or_fail(const std::string& input);

// Fails the run unless `category` is empty (all mail) or a category of the valid config.
void check_category(Context& ctx, const std::string& category);

// A category as the scope of a suppression in output: "all mail" for the empty one.
std::string scope_text(const std::string& category);

}  // namespace bulkmail::ctl
