// The command line's mechanics (parsing it, running the chosen command, the exit status), and the
// helpers several command files share.
#include "commands.h"

#include <SQLiteCpp/Exception.h>

#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/address.h"
#include "context.h"

namespace bulkmail::ctl {
namespace {

// The words of the command line that are not options, nor --config's value: the subcommands
// first ("bounce", "receive"), then the arguments.
std::vector<std::string> words_of(int argc, char** argv) {
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] != '-') words.push_back(std::move(a));
  }
  return words;
}

// A command line CLI11 refused: says why, and exits 2; for `bounce receive`, 75 instead. An MTA
// bounces the report on a 2 (Postfix's pipe(8) does), and a bounce of a bounce goes to no one:
// reports would be lost to a typo in master.cf, where 75 keeps them queued until it is fixed.
int usage_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  std::vector<std::string> words = words_of(argc, argv);
  // "bulkmailctl bogus": say so, rather than CLI11's "a subcommand is required".
  if (!words.empty() &&
      app.get_subcommands([&](CLI::App* s) { return s->get_name() == words[0]; }).empty()) {
    std::cerr << "bulkmailctl: unknown subcommand '" << words[0] << "' (see bulkmailctl --help)\n";
    return kExitUsage;
  }
  app.exit(e);
  if (words.size() >= 2 && words[0] == "bounce" && words[1] == "receive") {
    std::cerr << "bulkmailctl: bounce receive: the report is kept for a later try\n";
    return kExitTempFail;
  }
  return kExitUsage;
}

}  // namespace

// Parses the command line. Returns the exit status when parsing ends the run (--help, --version,
// bad usage); nothing when the chosen command is to run.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e, argc, argv);
  }
  return std::nullopt;
}

// Runs the chosen command; returns the exit status. The store throws std::runtime_error when the
// database fails: SQLite::Exception for what SQLite reports, std::runtime_error itself for what
// bulkmail finds wrong with the file (sqlite_store.h). Neither escapes uncaught.
int run_command(const Commands& commands, const Options& opts) {
  Context ctx(opts.config_path);
  try {
    commands.run_chosen(ctx, opts);
  } catch (const ExitCode& e) {
    return e.code;
  } catch (const SQLite::Exception& e) {
    std::cerr << "bulkmailctl: database error: " << e.what() << ctx.full_disk_note() << "\n";
    return kExitFailure;
  } catch (const std::runtime_error& e) {
    // Before the store is open, the failure is not the database's (an OpenSSL call, say).
    std::cerr << "bulkmailctl: " << (ctx.store_open() ? "database error: " : "") << e.what()
              << (ctx.store_open() ? ctx.full_disk_note() : "") << "\n";
    return kExitFailure;
  }
  std::cout.flush();
  return std::cout ? 0 : kExitFailure;
}

// --format of an imported file.
void add_format_option(CLI::App* command, Options& opts) {
  command->add_option("--format", opts.format, "csv or jsonl (default: by file extension)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
}

std::string normalized_or_fail(const std::string& input) {
  auto a = parse_address(input);
  if (!a) fail("bad address: " + a.error().message);
  return a->str();
}

void check_category(Context& ctx, const std::string& category) {
  if (!category.empty() && !ctx.cfg().category(category))
    fail("unknown category '" + category + "'");
}

std::string scope_text(const std::string& category) {
  return category.empty() ? "all mail" : category;
}

}  // namespace bulkmail::ctl
