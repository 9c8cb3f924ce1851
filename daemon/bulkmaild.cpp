// bulkmaild: drains the bulkmail queue over SMTP. This file only wires the parts together: the
// config, the store worker, the sender threads and the dispatcher on one Boost.Asio event loop
// with signals, systemd notifications and the watchdog.
#include <sys/resource.h>
#include <unistd.h>

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <curl/curl.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <iostream>

#include "base/address.h"
#include "base/log.h"
#include "compose/composer.h"
#include "config/config.h"
#include "config/config_status.h"
#include "daemon_backend.h"
#include "delivery/dispatcher.h"
#include "delivery/sender_pool.h"
#include "delivery/transport.h"
#include "notifier.h"
#include "store/instance_lock.h"
#include "store/outcome_journal.h"
#include "store/retention.h"
#include "store/sqlite/sqlite_checkpointer.h"
#include "store/sqlite/sqlite_store.h"
#include "store/started_deliveries.h"
#include "store/store_worker.h"
#include "web/http_server.h"

namespace asio = boost::asio;
using namespace bulkmail;

namespace {

int check(const std::filesystem::path& path, const std::shared_ptr<const Config>& config) {
  try {
    SqliteStore store(config->database.string());
  } catch (const std::exception& e) {
    std::cerr << "bulkmaild: database " << config->database.string() << ": " << e.what() << "\n";
    return 1;
  }
  auto composer = Composer::create(config);
  if (!composer) {
    std::cerr << "bulkmaild: " << mask_addresses_in(composer.error().message) << "\n";
    return 1;
  }
  std::cout << "bulkmaild: " << path.string() << " is valid; database " << config->database.string()
            << " is at schema version " << SqliteStore::schema_version() << "\n";
  return 0;
}

// Every webhook connection, SMTP connection and database file is a descriptor. Raises the soft
// limit when the hard one allows; otherwise the error names the numbers.
Result<bool> fit_descriptors(const Config& c) {
  rlim_t need = static_cast<rlim_t>(c.webhook.max_connections) +
                static_cast<rlim_t>(c.webhook.loopback_reserve) +
                2 * static_cast<rlim_t>(c.smtp.max_connections) + 64;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return true;
  if (lim.rlim_cur >= need) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) {
    return make_error("webhook.max_connections (" + std::to_string(c.webhook.max_connections) +
                      ") and smtp.max_connections (" + std::to_string(c.smtp.max_connections) +
                      ") need about " + std::to_string(need) +
                      " file descriptors, but the hard limit is " + std::to_string(lim.rlim_max) +
                      ": lower them or raise LimitNOFILE= in the unit");
  }
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? need : lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  return true;
}

ConfigLoad load_and_report(const std::filesystem::path& path) {
  ConfigLoad load = load_config(path);
  for (const auto& w : load.warnings) log_warning(w.str());
  if (!load.ok()) {
    for (const auto& e : load.errors) log_error(e.str());
  } else if (auto c = Composer::create(load.config); !c) {
    load.errors.push_back({path.string(), 0, 0, "templates", c.error().message});
    log_error(load.errors.back().str());
    load.config.reset();
  }
  return load;
}

std::string status_line(const DispatchStats& s) {
  return (s.paused ? "paused: " + s.pause_reason + "; " : std::string()) + "sent " +
         std::to_string(s.sent) + ", deferred " + std::to_string(s.deferred) + ", failed " +
         std::to_string(s.failed) + ", suppressed " + std::to_string(s.suppressed) +
         ", in flight " + std::to_string(s.in_flight) + ", buffered " + std::to_string(s.buffered);
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
  ConfigLoad load = load_config(path);
  // Under systemd this is the log: a key that happens to be an address is masked like any other
  // (the config that could turn masking off is the one being refused).
  for (const auto& w : load.warnings)
    std::cerr << "bulkmaild: warning: " << mask_addresses_in(w.str()) << "\n";
  if (!load.ok()) {
    for (const auto& e : load.errors) std::cerr << mask_addresses_in(e.str()) << "\n";
    std::cerr << "bulkmaild: " << path.string() << " is invalid (" << load.errors.size()
              << " problem" << (load.errors.size() == 1 ? "" : "s") << ")\n";
    return 1;
  }
  std::shared_ptr<const Config> config = load.config;
  if (check_only) return check(path, config);

  configure_logging(config->logging);
  if (auto fits = fit_descriptors(*config); !fits) {
    log_error(fits.error().message);
    return 1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  auto lock = InstanceLock::acquire(config->database.string());
  if (!lock) {
    log_error(lock.error().message);
    return 1;
  }
  auto composer = Composer::create(config);
  if (!composer) {
    log_error(composer.error().message);
    return 1;
  }
  std::unique_ptr<SqliteStore> store, reader_store;
  std::unique_ptr<SqliteCheckpointer> checkpointer;
  auto journal = OutcomeJournal::open(config->database);
  if (!journal) {
    log_error("outcome journal: " + journal.error().message);
    return 1;
  }
  auto started = StartedDeliveries::open(config->database, config->smtp.max_connections);
  if (!started) {
    log_error("started deliveries: " + started.error().message);
    return 1;
  }
  try {
    store = std::make_unique<SqliteStore>(config->database.string(), /*checkpoints=*/false);
    // Outcomes the last daemon journaled but did not commit: those messages were dealt with and
    // must not be sent again.
    if (std::size_t n = apply_recovered(**journal, *store, now_millis())) {
      log_info("recorded " + std::to_string(n) +
               " outcomes the last daemon had journaled but not committed");
    }
    for (const auto& problem : (*journal)->problems()) log_warning("outcome journal: " + problem);
    // This process holds the database alone, so every lease left in it belongs to a dead daemon.
    // Only those its senders had begun to deliver may have reached the relay.
    UnixMillis now = now_millis();
    auto recovered = store->recover_leases(std::numeric_limits<UnixMillis>::max(), now,
                                           (*started)->left_by_last_daemon());
    for (MessageId id : recovered.possible_duplicates) {
      log_warning("message " + std::to_string(id) +
                  " was being sent when the last daemon stopped: queued again "
                  "(it may already have been delivered: possible duplicate)");
    }
    if (recovered.never_tried) {
      log_info(std::to_string(recovered.never_tried) +
               " messages the last daemon had claimed but not yet tried are queued again");
    }
    reader_store = std::make_unique<SqliteStore>(config->database.string());
    checkpointer = std::make_unique<SqliteCheckpointer>(config->database.string(),
                                                        std::chrono::milliseconds(50));
  } catch (const std::exception& e) {
    log_error("database " + config->database.string() + ": " + e.what());
    return 1;
  }

  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string owner = std::string(host) + ":" + std::to_string(getpid());

  // The HTTP server is made first so that it outlives everything that may hold one of its
  // sessions: answers still queued by the workers when they stop are posted to its (stopped)
  // io_context, and closures for /healthz and /metrics still queued on the main loop's `io` are
  // destroyed with `io`, before the server.
  std::unique_ptr<Webhook> webhook;
  HttpLimits limits;
  limits.max_connections = static_cast<std::size_t>(config->webhook.max_connections);
  limits.max_connections_per_client =
      static_cast<std::size_t>(config->webhook.max_connections_per_client);
  limits.loopback_reserve = static_cast<std::size_t>(config->webhook.loopback_reserve);
  HttpServer http(limits, [&webhook](HttpRequest req, Responder respond) {
    webhook->handle(std::move(req), std::move(respond));
  });
  asio::io_context io;
  Notifier notifier;
  // Suppressions made after a claim, for the senders' last look; kept while any message claimed
  // before them may still be delivered.
  SuppressionWatch watch;
  StoreWorker worker(std::move(store), config->smtp.max_connections + 1, std::move(journal.value()),
                     &watch);
  StoreWorker reader(std::move(reader_store), 0);
  auto dispatcher =
      std::make_unique<Dispatcher>(io, config, worker, config->smtp.max_connections, owner, &watch);
  SenderPool senders(
      config, worker, watch, *dispatcher,
      [](const Config& c, const std::atomic<bool>& abort) {
        return std::make_unique<CurlTransport>(c.smtp, c.sender.from.address.domain, &abort);
      },
      [database = config->database.string()]() -> std::unique_ptr<Store> {
        return std::make_unique<SqliteStore>(database);
      },
      started->get());
  DaemonBackend backend(worker, reader, io, *dispatcher);
  webhook = std::make_unique<Webhook>(config, backend);
  ConfigStatus config_status;
  config_status.loaded_at = now_millis();
  webhook->set_config_status(config_status);
  if (auto listening = http.listen(config->webhook.listen_host, config->webhook.listen_port);
      !listening) {
    log_error("webhook: " + listening.error().message);
    return 1;
  }

  Retention retention(io, worker, config->retention);
  bool stopping = false;
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP && !stopping) {
          notifier.reloading();
          log_info("reloading " + path.string());
          ConfigLoad fresh = load_and_report(path);
          if (fresh.config) {
            if (fresh.config->database != config->database ||
                fresh.config->smtp.max_connections != config->smtp.max_connections ||
                fresh.config->webhook.listen_host != config->webhook.listen_host ||
                fresh.config->webhook.listen_port != config->webhook.listen_port ||
                fresh.config->webhook.max_connections != config->webhook.max_connections ||
                fresh.config->webhook.max_connections_per_client !=
                    config->webhook.max_connections_per_client ||
                fresh.config->webhook.loopback_reserve != config->webhook.loopback_reserve) {
              log_warning(
                  "database, smtp.max_connections, webhook.listen and webhook's connection caps "
                  "take effect only after a restart");
            }
            config = fresh.config;
            configure_logging(config->logging);
            senders.reload(config);
            dispatcher->reload(config);
            webhook->reload(config);
            retention.reload(config->retention);
            log_info("reloaded: new throttle, categories and templates in effect");
            config_status = ConfigStatus();
            config_status.loaded_at = now_millis();
          } else {
            log_error("the new config is invalid; keeping the one in effect");
            config_status.reload_failed_at = now_millis();
            config_status.reload_problem = fresh.errors.front().str();
            if (fresh.errors.size() > 1) {
              config_status.reload_problem += ", and " + std::to_string(fresh.errors.size() - 1) +
                                              " more problem" +
                                              (fresh.errors.size() > 2 ? "s" : "");
            }
          }
          webhook->set_config_status(config_status);
          // For `bulkmailctl status`, which reads it from the database.
          worker.run(
              [problem = config_status.describe()](Store& s) { s.set_config_problem(problem); });
          notifier.ready();
        } else if (sig != SIGHUP && !stopping) {
          stopping = true;
          notifier.stopping();
          retention.stop();
          log_info("stopping: finishing deliveries in flight (grace " +
                   std::to_string(config->daemon.shutdown_grace_seconds) + " s)");
          dispatcher->shutdown([&] { io.stop(); }, [&] { senders.abort_in_flight(); });
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  // WATCHDOG=1 from the loop itself: a stalled loop stops sending it and systemd restarts us.
  asio::steady_timer watchdog(io);
  std::function<void(const boost::system::error_code&)> on_watchdog =
      [&](const boost::system::error_code& ec) {
        if (ec) return;
        notifier.watchdog();
        watchdog.expires_after(notifier.watchdog_interval());
        watchdog.async_wait(on_watchdog);
      };
  if (notifier.watchdog_interval().count() > 0) {
    watchdog.expires_after(notifier.watchdog_interval());
    watchdog.async_wait(on_watchdog);
  }
  asio::steady_timer status_timer(io);
  int ticks = 0;
  std::function<void(const boost::system::error_code&)> on_status =
      [&](const boost::system::error_code& ec) {
        if (ec) return;
        std::string line = status_line(dispatcher->stats());
        notifier.status(line);
        if (++ticks % 12 == 0) log_info(line);  // every minute
        status_timer.expires_after(std::chrono::seconds(5));
        status_timer.async_wait(on_status);
      };
  status_timer.expires_after(std::chrono::seconds(5));
  status_timer.async_wait(on_status);

  dispatcher->start();
  retention.start();
  // After start()'s state: whatever an earlier daemon left is not true of this one's config.
  worker.run([](Store& s) { s.set_config_problem(""); });
  http.start(2);
  notifier.status("sending");
  notifier.ready();
  log_info("bulkmaild started: " + std::to_string(config->smtp.max_connections) +
           " connections to " + config->smtp.host + ", " +
           std::to_string(config->throttle.messages_per_second) + " msg/s; webhook on " +
           config->webhook.listen_host + ":" + std::to_string(http.port()));
  io.run();

  http.stop();
  senders.stop();
  worker.run([](Store& s) {
    s.set_dispatch_state({"stopped", "", now_millis(), ""});
    s.set_config_problem("");  // a stopped daemon runs on no config
  });
  worker.stop();
  reader.stop();
  log_info("stopped: " + status_line(dispatcher->stats()));
  curl_global_cleanup();
  return 0;
}
