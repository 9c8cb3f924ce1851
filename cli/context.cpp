#include "context.h"

#include <exception>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <utility>

#include "store/instance_lock.h"
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
  if (!l.database.empty() && InstanceLock::held(l.database.string())) {
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

std::string Context::database_path() {
  if (database_despite_invalid_config_ && !load().ok() && !load().database.empty())
    return load().database.string();
  return cfg().database.string();
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
    std::string path = database_path();
    try {
      store_ = std::make_unique<SqliteStore>(path, /*checkpoints=*/true, SqliteOpen::existing);
    } catch (const std::exception& e) {
      fail("database " + path + ": " + e.what());
    }
  }
  return *store_;
}

}  // namespace bulkmail::ctl
