// A running bulkmaild: the parts wired together on one Boost.Asio event loop. The store worker
// (the one writer) and a reader, the sender threads and the dispatcher that feeds them, the
// webhook's HTTP server, retention, signals (SIGHUP reloads, SIGTERM and SIGINT drain and stop),
// and the systemd heartbeats.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <atomic>
#include <filesystem>
#include <memory>

#include "base/result.h"
#include "config/config.h"
#include "config/config_status.h"
#include "daemon_backend.h"
#include "delivery/dispatcher.h"
#include "delivery/sender_pool.h"
#include "loop_timers.h"
#include "notifier.h"
#include "store/outcome_journal.h"
#include "store/postgres/pg_quota.h"
#include "store/postgres/pg_store.h"
#include "store/retention.h"
#include "store/sqlite/sqlite_checkpointer.h"
#include "store/sqlite/sqlite_store.h"
#include "store/started_deliveries.h"
#include "store/store_worker.h"
#include "suppression_listener.h"
#include "web/http_server.h"
#include "web/webhook.h"

namespace bulkmail {

// Applies what the last daemon left in `store`: the outcomes it journaled but did not commit
// (those messages were dealt with and must not be sent again), then its leases (each message
// goes back to the queue; those its senders had begun may have reached the relay, and are logged
// as possible duplicates). This process holds the database alone, so every lease is a dead
// daemon's.
void recover(OutcomeJournal& journal, Store& store, const StartedDeliveries& started);

// Several daemons share a PostgreSQL database: only the leases that ran out (their daemon stopped
// renewing them: it died) go back to the queue, as possible duplicates, each logged. Any daemon
// does it, at start and every few seconds.
void rescue_expired_leases(Store& store, UnixMillis now);

// A new store on the config's database, as the daemon's writer, reader and senders each open one.
std::unique_ptr<Store> open_store(const DatabaseConfig& database);

class Daemon {
 public:
  // Opens the database and the daemon's journals, recover()s, wires every part and binds the
  // webhook's socket. The error names what could not be opened.
  static Result<std::unique_ptr<Daemon>> open(std::filesystem::path config_path,
                                              std::shared_ptr<const Config> config);
  ~Daemon();

  // Sends until SIGTERM or SIGINT, then drains (at most daemon.shutdown_grace_seconds) and stops.
  void run();

 private:
  struct Opened;  // what open() opened before the parts could be made
  Daemon(std::filesystem::path config_path, std::shared_ptr<const Config> config, Opened opened);
  void on_signal(const boost::system::error_code& ec, int sig);
  void reload();
  void stop();
  std::string status_line() const;
  // Every few seconds: this daemon's leases renewed (its heartbeat); on PostgreSQL, other daemons'
  // expired ones rescued, unless the database came back less than a lease ago (an outage stops
  // every daemon's renewals alike: a lease it let run out is no sign its daemon died).
  void tend_leases();

  std::filesystem::path path_;
  std::shared_ptr<const Config> config_;  // in effect: the newest that loaded
  // The one the daemon started with: what a reload cannot change is still as it says.
  const std::shared_ptr<const Config> started_with_;
  const std::string owner_;  // this daemon's name on its leases: host, pid, a random part
  std::unique_ptr<StartedDeliveries> started_;
  std::unique_ptr<SqliteCheckpointer> checkpointer_;
  // Made before everything that may hold one of its sessions, so destroyed after it: answers
  // still queued by the workers when they stop are posted to its (stopped) io_context, and
  // closures for /healthz and /metrics still queued on `io_` are destroyed with `io_`.
  std::unique_ptr<Webhook> webhook_;
  HttpServer http_;
  boost::asio::io_context io_;
  Notifier notifier_;
  // Suppressions made after a claim, for the senders' last look; kept while any message claimed
  // before them may still be delivered.
  SuppressionWatch watch_;
  StoreWorker worker_;
  StoreWorker reader_;
  // PostgreSQL only: the dispatcher's claims, on a connection of their own (null on SQLite, where
  // the writer claims).
  std::unique_ptr<StoreWorker> claimer_;
  // Several daemons on PostgreSQL: the shared throttle's exchanges (null on SQLite). Stopped
  // before the dispatcher it answers goes.
  std::unique_ptr<QuotaWorker> quota_;
  std::unique_ptr<Dispatcher> dispatcher_;
  // PostgreSQL only: other daemons' suppressions heard at once (LISTEN).
  std::unique_ptr<SuppressionListener> listener_;
  SenderPool senders_;
  DaemonBackend backend_;
  ConfigStatus config_status_;
  Retention retention_;
  boost::asio::signal_set signals_;
  LoopTimers timers_;
  bool stopping_ = false;
  // When the database last came back (0: it never went; max: it is away now), for tend_leases.
  std::atomic<UnixMillis> database_back_at_{0};
};

}  // namespace bulkmail
