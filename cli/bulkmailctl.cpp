// bulkmailctl: the operator's command line for the bulkmail queue. It only wires arguments to the
// library and prints results; every rule lives in lib/.
//
// Exit status: 0 success, 1 failure (bad input, rejected rows, a database error), 2 bad usage,
// 3 invalid config. `bounce receive`, which an MTA runs, exits only 0, 65 or 75 (sysexits).
//
// This file only builds the command line: each group of commands is declared by an
// add_*_commands function in a file of its own (commands.h lists them).
#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "commands.h"

using namespace bulkmail::ctl;

int main(int argc, char** argv) {
  CLI::App app{"bulkmailctl: queue mail for bulkmaild, manage suppressions, inspect the queue"};
  app.set_version_flag("--version", std::string("bulkmailctl ") + BULKMAIL_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  Options opts;
  app.add_option("--config", opts.config_path,
                 "config file (default: $BULKMAIL_CONFIG, then /etc/bulkmail/bulkmail.yaml)");
  // In the order --help lists them.
  Commands commands;
  add_queue_commands(app, opts, commands);
  add_preview_commands(app, opts, commands);
  add_status_command(app, opts, commands);
  add_suppress_commands(app, opts, commands);
  add_address_commands(app, opts, commands);
  add_campaign_commands(app, opts, commands);
  add_bounce_commands(app, opts, commands);
  add_store_commands(app, opts, commands);
  if (std::optional<int> status = parse_command_line(app, argc, argv)) return *status;
  return run_command(commands, opts);
}
