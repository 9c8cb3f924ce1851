// bulkmaild: drains the bulkmail queue over SMTP. This file reads the command line and the config
// and hands over to a Daemon (daemon.h), which wires the parts together.
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <iostream>

#include "base/address.h"
#include "base/log.h"
#include "compose/composer.h"
#include "daemon.h"
#include "delivery/transport.h"
#include "store/instance_lock.h"
#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"

using namespace bulkmail;

namespace {

// Opens (creating or migrating) the database the config names; its schema version.
int open_database(const DatabaseConfig& database) {
  if (database.is_postgresql()) {
    PostgresStore store(database.postgresql);
    return PostgresStore::schema_version();
  }
  SqliteStore store(database.sqlite.string());
  return SqliteStore::schema_version();
}

int check(const std::filesystem::path& path, const std::shared_ptr<const Config>& config) {
  int version = 0;
  try {
    version = open_database(config->database);
  } catch (const std::exception& e) {
    std::cerr << "bulkmaild: database " << config->database.str() << ": " << e.what() << "\n";
    return 1;
  }
  if (auto composer = Composer::create(config); !composer) {
    std::cerr << "bulkmaild: " << mask_addresses_in(composer.error().message) << "\n";
    return 1;
  }
  std::cout << "bulkmaild: " << path.string() << " is valid; database " << config->database.str()
            << " is at schema version " << version << "\n";
  return 0;
}

// Every webhook connection, SMTP connection and database file is a descriptor. Raises the soft
// limit when the hard one allows; otherwise the error names the numbers.
Result<void> fit_descriptors(const Config& c) {
  rlim_t need = static_cast<rlim_t>(c.webhook.max_connections) +
                static_cast<rlim_t>(c.webhook.loopback_reserve) +
                2 * static_cast<rlim_t>(c.smtp.max_connections) + 64;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= need) return {};
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) {
    return make_error("webhook.max_connections (" + std::to_string(c.webhook.max_connections) +
                      ") and smtp.max_connections (" + std::to_string(c.smtp.max_connections) +
                      ") need about " + std::to_string(need) +
                      " file descriptors, but the hard limit is " + std::to_string(lim.rlim_max) +
                      ": lower them or raise LimitNOFILE= in the unit");
  }
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? need : lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  return {};
}

// The config at start. Under systemd stderr is the log: a key that happens to be an address is
// masked like any other (the config that could turn masking off is the one being refused).
std::shared_ptr<const Config> load_at_start(const std::filesystem::path& path) {
  ConfigLoad load = load_config(path);
  for (const auto& w : load.warnings)
    std::cerr << "bulkmaild: warning: " << mask_addresses_in(w.str()) << "\n";
  if (!load.ok()) {
    for (const auto& e : load.errors) std::cerr << mask_addresses_in(e.str()) << "\n";
    std::cerr << "bulkmaild: " << path.string() << " is invalid (" << load.errors.size()
              << " problem" << (load.errors.size() == 1 ? "" : "s") << ")\n";
  }
  return load.config;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bulkmaild: the bulkmail dispatch daemon"};
  std::string config_path;
  bool check_only = false;
  app.add_option("--config", config_path,
                 "config file (default: $BULKMAIL_CONFIG, then /etc/bulkmail/bulkmail.yaml)");
  app.add_flag("--check", check_only,
               "validate the config, templates and database, then exit; never contacts the relay");
  app.set_version_flag("--version", std::string("bulkmaild ") + BULKMAIL_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are successes; anything else is bad usage: exit 2, as bulkmailctl.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  std::filesystem::path path =
      config_path.empty() ? default_config_path() : std::filesystem::path(config_path);
  std::shared_ptr<const Config> config = load_at_start(path);
  if (!config) return 1;
  if (check_only) return check(path, config);

  configure_logging(config->logging);
  if (auto fits = fit_descriptors(*config); !fits) {
    log_error(fits.error().message);
    return 1;
  }
  CurlGlobal curl;
  // SQLite: one daemon on the file. PostgreSQL: as many as share the database.
  std::optional<InstanceLock> lock;
  if (!config->database.is_postgresql()) {
    auto held = InstanceLock::acquire(config->database.sqlite.string());
    if (!held) {
      log_error(held.error().message);
      return 1;
    }
    lock.emplace(std::move(held.value()));
  }
  auto daemon = Daemon::open(path, config);
  if (!daemon) {
    log_error(daemon.error().message);
    return 1;
  }
  (*daemon)->run();
  return 0;
}
