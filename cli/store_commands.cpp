// bulkmailctl store copy: moving up from one machine to several. Everything a SQLite database
// holds, copied into an empty PostgreSQL database (store/postgres/pg_copy.h), counted on both
// sides; then the config's `database:` names PostgreSQL.
#include <iostream>
#include <string>

#include "commands.h"
#include "config/config.h"
#include "store/instance_lock.h"
#include "store/postgres/pg_copy.h"
#include "store/sqlite/sqlite_store.h"

namespace bulkmail::ctl {
namespace {

void cmd_store_copy(Context&, const Options& opts) {
  if (!names_postgresql(opts.to_database)) {
    fail("store copy: --to must be a PostgreSQL URI (postgresql://user@host/dbname)", kExitUsage);
  }
  if (auto ok = check_postgresql_uri(opts.to_database); !ok)
    fail("store copy: --to: " + ok.error().message);
  if (InstanceLock::held(opts.from)) {
    fail("store copy: bulkmaild is running on " + opts.from +
         ": stop it first (`systemctl stop bulkmaild`), so that nothing changes during the copy");
  }
  try {
    // Opened as bulkmailctl opens it: a bulkmail database at this build's schema, or refused.
    SqliteStore check(opts.from, /*checkpoints=*/true, SqliteOpen::existing);
  } catch (const std::exception& e) {
    fail("store copy: " + opts.from + ": " + e.what());
  }
  pg::Connection to(opts.to_database);
  CopyCounts counts = copy_sqlite_to_postgres(opts.from, to);
  std::cout << "copied " << opts.from << " to " << opts.to_database << "\n";
  for (const auto& [table, rows] : counts) std::cout << "  " << table << ": " << rows << "\n";
  std::cout << "the counts match; set `database: \"" << opts.to_database
            << "\"` in the config, then run `bulkmaild --check`\n";
}

}  // namespace

void add_store_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* store = app.add_subcommand("store", "move the queue to another database");
  store->require_subcommand(1);
  auto* copy = store->add_subcommand(
      "copy",
      "copy everything a SQLite database holds (messages in every state, suppressions with their "
      "evidence, the whole event log, campaigns, the dispatcher's state) into an empty PostgreSQL "
      "database, and check the counts");
  copy->add_option("--from", opts.from, "the SQLite database file")->required();
  copy->add_option("--to", opts.to_database,
                   "the PostgreSQL database: postgresql://user@host/dbname")
      ->required();
  commands.add(copy, cmd_store_copy);
}

}  // namespace bulkmail::ctl
