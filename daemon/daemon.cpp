#include "daemon.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <cstdio>

#include <limits>

#include "base/log.h"
#include "delivery/transport.h"
#include "restart_keys.h"
#include "store/feedback.h"

namespace bulkmail {
namespace {

// How long a sender's outcome may wait on PostgreSQL for others to share its commit.
constexpr std::chrono::microseconds kPostgresGroupWindow{4000};

HttpLimits http_limits(const WebhookConfig& w) {
  HttpLimits limits;
  limits.max_connections = static_cast<std::size_t>(w.max_connections);
  limits.max_connections_per_client = static_cast<std::size_t>(w.max_connections_per_client);
  limits.loopback_reserve = static_cast<std::size_t>(w.loopback_reserve);
  return limits;
}

// Names this daemon's leases: the host, the process and a random part (a pid comes again after a
// restart, or in another container on the same host name).
std::string lease_owner() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  unsigned char random[4] = {};
  RAND_bytes(random, sizeof random);
  char part[9];
  std::snprintf(part, sizeof part, "%02x%02x%02x%02x", random[0], random[1], random[2], random[3]);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + part;
}

std::string describe_problems(const std::vector<ConfigError>& errors) {
  std::string s = errors.front().str();
  if (errors.size() > 1) {
    s += ", and " + std::to_string(errors.size() - 1) + " more problem" +
         (errors.size() > 2 ? "s" : "");
  }
  return s;
}

// The config after a SIGHUP, made ready for the senders, its problems logged. Templates that do
// not load make it invalid.
std::optional<SenderPool::Prepared> load_for_reload(const std::filesystem::path& path,
                                                    std::vector<ConfigError>& errors) {
  ConfigLoad load = load_config(path);
  for (const auto& w : load.warnings) log_warning(w.str());
  errors = load.errors;
  if (load.ok()) {
    auto prepared = SenderPool::prepare(load.config);
    if (prepared) return std::move(prepared).value();
    errors.push_back({path.string(), 0, 0, "templates", prepared.error().message});
  }
  for (const auto& e : errors) log_error(e.str());
  return std::nullopt;
}

}  // namespace

void recover(OutcomeJournal& journal, Store& store, const StartedDeliveries& started) {
  if (std::size_t n = apply_recovered(journal, store, now_millis())) {
    log_info("recorded " + std::to_string(n) +
             " outcomes the last daemon had journaled but not committed");
  }
  for (const auto& problem : journal.problems()) log_warning("outcome journal: " + problem);
  auto recovered = store.recover_leases(std::numeric_limits<UnixMillis>::max(), now_millis(),
                                        started.left_by_last_daemon());
  for (MessageId id : recovered.possible_duplicates) {
    log_warning("message " + std::to_string(id) +
                " was being sent when the last daemon stopped: queued again "
                "(it may already have been delivered: possible duplicate)");
  }
  if (recovered.never_tried) {
    log_info(std::to_string(recovered.never_tried) +
             " messages the last daemon had claimed but not yet tried are queued again");
  }
}

void rescue_expired_leases(Store& store, UnixMillis now) {
  auto rescued = store.recover_leases(now, now, std::nullopt);
  for (std::size_t i = 0; i < rescued.possible_duplicates.size(); ++i) {
    log_warning("message " + std::to_string(rescued.possible_duplicates[i]) +
                ": the daemon sending it (" + rescued.owners[i] +
                ") stopped renewing its lease; queued again (it may already have been "
                "delivered: possible duplicate)");
  }
}

std::unique_ptr<Store> open_store(const DatabaseConfig& database) {
  if (database.is_postgresql()) return std::make_unique<PostgresStore>(database.postgresql);
  return std::make_unique<SqliteStore>(database.sqlite.string());
}

// SQLite: one daemon on the file, with its outcome journal, its record of deliveries begun and the
// checkpointer. PostgreSQL: several daemons on one database; outcomes are durable once committed,
// and a dead daemon's messages come back when their leases run out.
struct Daemon::Opened {
  SenderPool::Prepared prepared;
  std::unique_ptr<Composer> checker;        // the prepared composer for the webhook's compose check
  std::unique_ptr<OutcomeJournal> journal;  // SQLite only
  std::unique_ptr<StartedDeliveries> started;  // SQLite only
  std::unique_ptr<Store> writer, reader;
  std::unique_ptr<SqliteCheckpointer> checkpointer;  // SQLite only
  std::unique_ptr<QuotaWorker> quota;                // PostgreSQL only: the shared throttle
  std::unique_ptr<Store> claims;                     // PostgreSQL only: the claims' connection
};

Result<std::unique_ptr<Daemon>> Daemon::open(std::filesystem::path config_path,
                                             std::shared_ptr<const Config> config) {
  Opened o;
  auto prepared = SenderPool::prepare(config);
  if (!prepared) return prepared.error();
  o.prepared = std::move(prepared).value();
  o.checker = std::move(o.prepared.for_checks);
  if (config->database.is_postgresql()) {
    try {
      o.writer = open_store(config->database);
      rescue_expired_leases(*o.writer, now_millis());
      o.reader = open_store(config->database);
      o.claims = open_store(config->database);
      o.quota = std::make_unique<QuotaWorker>(
          std::make_unique<PgClusterQuota>(config->database.postgresql));
    } catch (const std::exception& e) {
      return make_error("database " + config->database.str() + ": " + e.what());
    }
  } else {
    auto journal = OutcomeJournal::open(config->database.sqlite);
    if (!journal) return make_error("outcome journal: " + journal.error().message);
    o.journal = std::move(journal.value());
    auto started = StartedDeliveries::open(config->database.sqlite, config->smtp.max_connections);
    if (!started) return make_error("started deliveries: " + started.error().message);
    o.started = std::move(started.value());
    const std::string db = config->database.sqlite.string();
    try {
      o.writer = std::make_unique<SqliteStore>(db, /*checkpoints=*/false);
      recover(*o.journal, *o.writer, *o.started);
      o.reader = std::make_unique<SqliteStore>(db);
      o.checkpointer = std::make_unique<SqliteCheckpointer>(db, std::chrono::milliseconds(50));
    } catch (const std::exception& e) {
      return make_error("database " + db + ": " + e.what());
    }
  }
  std::unique_ptr<Daemon> d(new Daemon(std::move(config_path), config, std::move(o)));
  if (auto listening = d->http_.listen(config->webhook.listen_host, config->webhook.listen_port);
      !listening) {
    return make_error("webhook: " + listening.error().message);
  }
  return d;
}

Daemon::Daemon(std::filesystem::path config_path, std::shared_ptr<const Config> config,
               Opened opened)
    : path_(std::move(config_path)),
      config_(config),
      started_with_(std::move(config)),
      owner_(lease_owner()),
      started_(std::move(opened.started)),
      checkpointer_(std::move(opened.checkpointer)),
      http_(
          http_limits(config_->webhook),
          [this](HttpRequest req, Responder respond) {
            webhook_->handle(std::move(req), std::move(respond));
          },
          [this](HttpRefusal why) { webhook_->counters().refused(why); }),
      worker_(std::move(opened.writer), config_->smtp.max_connections, std::move(opened.journal),
              &watch_),
      reader_(std::move(opened.reader), 0),
      claimer_(opened.claims ? std::make_unique<StoreWorker>(std::move(opened.claims), 0)
                             : nullptr),
      quota_(std::move(opened.quota)),
      dispatcher_(std::make_unique<Dispatcher>(io_, config_, worker_, owner_, &watch_,
                                               system_time(), quota_.get(), claimer_.get())),
      senders_(
          std::move(opened.prepared), worker_, watch_, *dispatcher_,
          [](const Config& c, const std::atomic<bool>& abort) {
            return std::make_unique<CurlTransport>(c.smtp, c.sender.from.address.domain, &abort);
          },
          [database = config_->database]() -> std::unique_ptr<Store> {
            return open_store(database);
          },
          started_.get()),
      backend_(worker_, reader_, io_, *dispatcher_),
      retention_(io_, worker_, config_->retention),
      signals_(io_, SIGTERM, SIGINT, SIGHUP),
      timers_(
          io_, notifier_, [this] { return status_line(); }, [this] { tend_leases(); },
          [this] {
            // Rates a report found under the sample may reach it as more messages are answered.
            worker_.try_run([](Store& s) {
              for (const CampaignPaused& p : s.pause_tripped_campaigns(now_millis())) {
                log_warning(describe_pause(p));
              }
            });
          }) {
  // The writer's and the claimer's word on the database alike: either one failing is the
  // database away.
  auto health = [this](const std::string& trouble, std::chrono::milliseconds away) {
    // While the database is away, nobody's leases are renewed: once it is back, no daemon
    // rescues another's until every one has had a lease's time to renew its own.
    database_back_at_ = trouble.empty() ? now_millis() : std::numeric_limits<UnixMillis>::max();
    dispatcher_->database_health(trouble, away);
  };
  worker_.on_health(health);
  if (claimer_) claimer_->on_health(health);
  if (config_->database.is_postgresql()) {
    listener_ = std::make_unique<SuppressionListener>(io_, config_->database.postgresql, worker_);
    // The server's work per commit, not the disk, bounds a daemon on PostgreSQL (BENCHMARKS.md):
    // half the senders' outcomes, or 4 ms, make a group.
    worker_.set_group_commit(
        {static_cast<std::size_t>(config_->smtp.max_connections) / 2, kPostgresGroupWindow});
  }
  webhook_ = std::make_unique<Webhook>(config_, backend_, std::move(opened.checker));
  config_status_.loaded_at = now_millis();
  webhook_->set_config_status(config_status_);
}

// Whatever run() reached (nothing, when open() failed after the parts were made): the senders
// stop asking for work before the store worker runs its last tasks, and those (a claim's answer)
// run while the dispatcher they call back still exists.
Daemon::~Daemon() {
  if (listener_) listener_->stop();
  senders_.stop();
  if (quota_) quota_->stop();  // its answers call the dispatcher back
  if (claimer_) claimer_->stop();
  worker_.stop();
  reader_.stop();
}

void Daemon::tend_leases() {
  UnixMillis lease = UnixMillis{config_->daemon.lease_seconds} * 1000;
  UnixMillis back_at = database_back_at_;
  bool may_rescue = config_->database.is_postgresql() &&
                    back_at != std::numeric_limits<UnixMillis>::max() &&
                    now_millis() - back_at >= lease;
  worker_.try_run([this, owner = owner_, lease, may_rescue](Store& s) {
    UnixMillis now = now_millis();
    try {
      s.renew_leases(owner, now, now + lease);
    } catch (...) {
      // The heartbeat failed: the database is away for the rescue's purpose too, even while no
      // other write noticed (an idle daemon).
      database_back_at_ = std::numeric_limits<UnixMillis>::max();
      throw;
    }
    if (database_back_at_ == std::numeric_limits<UnixMillis>::max()) {
      database_back_at_ = now;  // back: the rescue waits a lease from now
      return;
    }
    if (may_rescue) rescue_expired_leases(s, now);
  });
}

std::string Daemon::status_line() const {
  DispatchStats s = dispatcher_->stats();
  return (s.paused ? "paused: " + s.pause_reason + "; " : std::string()) + "sent " +
         std::to_string(s.sent) + ", deferred " + std::to_string(s.deferred) + ", failed " +
         std::to_string(s.failed) + ", suppressed " + std::to_string(s.suppressed) +
         ", in flight " + std::to_string(s.in_flight) + ", buffered " + std::to_string(s.buffered);
}

void Daemon::run() {
  signals_.async_wait([this](const auto& ec, int sig) { on_signal(ec, sig); });
  // Before the first outcome: a campaign refused in the SMTP transaction pauses itself too.
  worker_.run(
      [policy = feedback_policy(config_->bounces)](Store& s) { s.set_feedback_policy(policy); });
  timers_.start();
  dispatcher_->start();
  if (listener_) listener_->start();
  senders_.start();
  retention_.start();
  // After start()'s state: whatever an earlier daemon left is not true of this one's config.
  worker_.run([](Store& s) { s.set_config_problem(""); });
  http_.start(2);
  notifier_.status("sending");
  notifier_.ready();
  log_info("bulkmaild started: " + std::to_string(config_->smtp.max_connections) +
           " connections to " + config_->smtp.host + ", " +
           std::to_string(config_->throttle.messages_per_second) + " msg/s; webhook on " +
           config_->webhook.listen_host + ":" + std::to_string(http_.port()));
  io_.run();

  http_.stop();
  if (listener_) listener_->stop();
  senders_.stop();
  if (quota_) quota_->stop();  // after the last exchange: slots and places handed back
  worker_.run([owner = owner_](Store& s) {
    s.set_dispatch_state({"stopped", "", now_millis(), "", owner});
    s.set_config_problem("");  // a stopped daemon runs on no config
  });
  if (claimer_) claimer_->stop();
  worker_.stop();
  reader_.stop();
  log_info("stopped: " + status_line());
}

void Daemon::on_signal(const boost::system::error_code& ec, int sig) {
  if (ec) return;
  if (!stopping_) {
    if (sig == SIGHUP) {
      reload();
    } else {
      stop();
    }
  }
  signals_.async_wait([this](const auto& e, int s) { on_signal(e, s); });
}

void Daemon::reload() {
  notifier_.reloading();
  log_info("reloading " + path_.string());
  std::vector<ConfigError> errors;
  if (auto fresh = load_for_reload(path_, errors)) {
    // Against the started config: a key changed twice is still waiting for the restart.
    if (auto keys = needs_restart(*started_with_, *fresh->config); !keys.empty())
      log_warning(restart_warning(keys));
    config_ = fresh->config;
    configure_logging(config_->logging);
    webhook_->reload(config_, std::move(fresh->for_checks));
    senders_.reload(std::move(*fresh));
    dispatcher_->reload(config_);
    retention_.reload(config_->retention);
    worker_.run(
        [policy = feedback_policy(config_->bounces)](Store& s) { s.set_feedback_policy(policy); });
    log_info("reloaded: new throttle, categories and templates in effect");
    config_status_ = ConfigStatus();
    config_status_.loaded_at = now_millis();
  } else {
    log_error("the new config is invalid; keeping the one in effect");
    config_status_.reload_failed_at = now_millis();
    config_status_.reload_problem = describe_problems(errors);
  }
  webhook_->set_config_status(config_status_);
  // For `bulkmailctl status`, which reads it from the database.
  worker_.run([problem = config_status_.describe()](Store& s) { s.set_config_problem(problem); });
  notifier_.ready();
}

void Daemon::stop() {
  stopping_ = true;
  notifier_.stopping();
  retention_.stop();
  log_info("stopping: finishing deliveries in flight (grace " +
           std::to_string(config_->daemon.shutdown_grace_seconds) + " s)");
  dispatcher_->shutdown([this] { io_.stop(); }, [this] { senders_.abort_in_flight(); });
}

}  // namespace bulkmail
