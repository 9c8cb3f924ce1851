// The command line's mechanics (parsing it, running the chosen command, the exit status), and the
// helpers several command files share.
#include "commands.h"

#include <SQLiteCpp/Exception.h>

#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>

#include "base/address.h"
#include "context.h"

namespace bulkmail::ctl {
namespace {

// A command line CLI11 refused: says why, and exits 2.
int usage_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  // "bulkmailctl bogus": say so, rather than CLI11's "a subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    auto known = app.get_subcommands([&](CLI::App* s) { return s->get_name() == a; });
    if (known.empty()) {
      std::cerr << "bulkmailctl: unknown subcommand '" << a << "' (see bulkmailctl --help)\n";
      return kExitUsage;
    }
    break;
  }
  app.exit(e);
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
    std::cerr << "bulkmailctl: database error: " << e.what() << "\n";
    return kExitFailure;
  } catch (const std::runtime_error& e) {
    // Before the store is open, the failure is not the database's (an OpenSSL call, say).
    std::cerr << "bulkmailctl: " << (ctx.store_open() ? "database error: " : "") << e.what()
              << "\n";
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
