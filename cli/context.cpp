#include "context.h"

#include <exception>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <utility>

#include "base/disk_space.h"
#include "store/instance_lock.h"
#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"

namespace fs = std::filesystem;

namespace bulkmail::ctl {

void fail(const std::string& message, int code) {
  std::cerr << "bulkmailctl: " << message << "\n";
  throw ExitCode{code};
}

const ConfigLoad& Context::load() {
  if (!loaded_) {
    fs::path p = config_path_.empty() ? default_config_path() : fs::path(config_path_);
    std::error_code ec;
    if (!fs::exists(p, ec)) {
      fail(p.string() + ": config file not found (give --config FILE or set $BULKMAIL_CONFIG)",
           kExitConfig);
    }
    loaded_ = load_config(p);
  }
  return *loaded_;
}

void Context::report_invalid(const ConfigLoad& l) {
  for (const auto& e : l.errors) std::cerr << e.str() << "\n";
  std::string running;
  if (!l.database.sqlite.empty() && InstanceLock::held(l.database.sqlite.string())) {
    running =
        "; bulkmaild is still running on the previous version of this file (fix it, "
        "then `systemctl reload bulkmaild`)";
  }
  std::cerr << "bulkmailctl: the config is invalid (" << l.errors.size() << " problem"
            << (l.errors.size() == 1 ? "" : "s") << ")" << running << "\n";
}

const std::shared_ptr<const Config>& Context::shared_cfg() {
  if (!config_) {
    const ConfigLoad& l = load();
    if (!l.ok()) {
      report_invalid(l);
      throw ExitCode{kExitConfig};
    }
    config_ = l.config;
  }
  return config_;
}

DatabaseConfig Context::database() {
  if (database_despite_invalid_config_ && !load().ok() && !load().database.empty())
    return load().database;
  return cfg().database;
}

bool Context::daemon_may_run() {
  DatabaseConfig d = database();
  return d.is_postgresql() || InstanceLock::held(d.sqlite.string());
}

const ComposeCheck& Context::check() {
  if (!compose_check_) {
    auto c = ComposeCheck::create(shared_cfg());
    if (!c) fail(c.error().message);
    compose_check_ = std::move(c.value());
  }
  return *compose_check_;
}

Store& Context::db() {
  if (!store_) {
    DatabaseConfig d = database();
    try {
      if (d.is_postgresql()) {
        store_ = std::make_unique<PostgresStore>(d.postgresql, PostgresOpen::existing);
      } else {
        store_ = std::make_unique<SqliteStore>(d.sqlite.string(), /*checkpoints=*/true,
                                               SqliteOpen::existing);
      }
    } catch (const std::exception& e) {
      fail("database " + d.str() + ": " + e.what() + full_disk_note());
    }
  }
  return *store_;
}

std::string Context::full_disk_note() {
  DatabaseConfig d = database();
  if (d.is_postgresql() || !no_space_left(d.sqlite)) return "";
  return " (the file system holding " + d.sqlite.parent_path().string() +
         " has no space left: free some, and try again)";
}

}  // namespace bulkmail::ctl
