// bulkmaild: the bulkmail daemon. For now it validates (`--check`): the config, the template
// folders and the database, which it creates and migrates when absent. It never contacts the relay
// while checking.
#include <CLI/CLI.hpp>

#include <iostream>

#include "config.h"
#include "sqlite_store.h"

using namespace bulkmail;

int main(int argc, char** argv) {
  CLI::App app{"bulkmaild: the bulkmail dispatch daemon"};
  std::string config_path;
  bool check = false;
  app.add_option("--config", config_path,
                 "config file (default: $BULKMAIL_CONFIG, then /etc/bulkmail/bulkmail.yaml)");
  app.add_flag("--check", check, "validate the config, templates and database, then exit");
  CLI11_PARSE(app, argc, argv);

  std::filesystem::path path =
      config_path.empty() ? default_config_path() : std::filesystem::path(config_path);
  ConfigLoad load = load_config(path);
  if (!load.ok()) {
    for (const auto& e : load.errors) std::cerr << e.str() << "\n";
    std::cerr << "bulkmaild: " << path.string() << " is invalid (" << load.errors.size()
              << " problem" << (load.errors.size() == 1 ? "" : "s") << ")\n";
    return 1;
  }
  try {
    SqliteStore store(load.config->database.string());
  } catch (const std::exception& e) {
    std::cerr << "bulkmaild: database " << load.config->database.string() << ": " << e.what()
              << "\n";
    return 1;
  }
  if (check) {
    std::cout << "bulkmaild: " << path.string() << " is valid; database "
              << load.config->database.string() << " is at schema version "
              << SqliteStore::schema_version() << "\n";
    return 0;
  }
  std::cerr << "bulkmaild: dispatching is not built yet; only --check is available\n";
  return 1;
}
