// What every bulkmailctl command runs with: the exit statuses and how a command ends with one,
// and the Context that reaches the config, the compose check and the store.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "config/config.h"
#include "intake/submission.h"
#include "store/store.h"

namespace bulkmail::ctl {

// Exit statuses besides 0 (the top of bulkmailctl.cpp lists them all).
inline constexpr int kExitFailure = 1;  // bad input, rejected rows, a database error
inline constexpr int kExitUsage = 2;    // a command line CLI11 refused (bounce receive: 75)
inline constexpr int kExitConfig = 3;   // the config is missing or invalid

// Thrown to end the run with `code`, once whatever the command had to say is printed;
// run_command (commands.h) turns it into the exit status.
struct ExitCode {
  int code;
};

// Prints "bulkmailctl: <message>" to stderr and throws ExitCode{code}.
[[noreturn]] void fail(const std::string& message, int code = kExitFailure);

// What the commands share, each made on first use and reached only through its accessor: the
// config (read, then validated), the compose check, the store. A command makes only what it uses:
// `preview` never opens the database, and `status` reports from the one an invalid config names.
class Context {
 public:
  explicit Context(std::string config_path) : config_path_(std::move(config_path)) {}

  // The config file as read, valid or not. Exits 3 when there is no such file.
  const ConfigLoad& load();

  // Prints an invalid config's problems, and whether a daemon still runs on an older version.
  void report_invalid(const ConfigLoad& l);

  // The valid config, shared with what keeps it (a composer, the compose check). An invalid one
  // has its problems reported and exits 3.
  const std::shared_ptr<const Config>& shared_cfg();
  const Config& cfg() { return *shared_cfg(); }

  // For `status`: database() then names the database of an invalid config too.
  void allow_invalid_config_for_database() { database_despite_invalid_config_ = true; }

  DatabaseConfig database();

  // Whether a bulkmaild may be running on the database. On SQLite its lock on the file says so;
  // on PostgreSQL, where several daemons share one database, nothing here can tell, so true.
  bool daemon_may_run();

  // What a message must pass to be queued: composed once, as bulkmaild will.
  const ComposeCheck& check();

  // The store, opened on first use (it must exist already); a failure to open it fails the run.
  Store& db();

  // " (the file system holding FOLDER has no space left ...)" when the SQLite database's disk is
  // full, to follow what SQLite said about a failure; "" otherwise.
  std::string full_disk_note();
  // Whether db() has opened the store: before that, no failure can be the database's.
  bool store_open() const { return store_ != nullptr; }

 private:
  std::string config_path_;  // --config; empty: $BULKMAIL_CONFIG, then the default path
  // `status` still reports from the database an invalid config names (and exits 3), so that an
  // operator whose edit failed to reload sees what the daemon is running on.
  bool database_despite_invalid_config_ = false;
  std::optional<ConfigLoad> loaded_;
  std::shared_ptr<const Config> config_;  // set by shared_cfg() only, from a valid loaded_
  std::unique_ptr<ComposeCheck> compose_check_;
  std::unique_ptr<Store> store_;
};

}  // namespace bulkmail::ctl
