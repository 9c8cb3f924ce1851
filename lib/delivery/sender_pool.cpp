#include "delivery/sender_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <random>

#include "base/log.h"
#include "compose/composer.h"
#include "delivery/outcome.h"

namespace bulkmail {
namespace {
// A message the relay never saw (connection refused) is due again after this; the circuit
// breaker decides when dispatch actually resumes.
constexpr UnixMillis kRelayRetryMs = 1000;

// A sender's hold on the recipient it is delivering to (SuppressionWatch::look_and_hold), ended
// once the outcome is recorded, and in any case before the next message.
struct Hold {
  SuppressionWatch& watch;
  int sender;
  SuppressionWatch::Look look;
  bool held = false;
  void take(const std::string& address, const std::string& category) {
    end();
    look = watch.look_and_hold(sender, address, category);
    held = !look.suppression;
  }
  void end() {
    if (held) watch.end_hold(sender);
    held = false;
  }
  ~Hold() { end(); }
};

// When the watch cannot tell (too many recent suppressions), the store can.
std::optional<Suppression> lookup_store(const SenderPool::StoreOpener& open,
                                        std::unique_ptr<Store>& reader, const std::string& address,
                                        const std::string& category) {
  if (!reader) reader = open();
  return reader->find_suppression(address, category);
}
}  // namespace

SenderPool::SenderPool(std::shared_ptr<const Config> config, StoreWorker& store,
                       SuppressionWatch& watch, JobSource& jobs, TransportFactory transports,
                       StoreOpener open_store, StartedDeliveries* started)
    : store_(store),
      watch_(watch),
      jobs_(jobs),
      transports_(std::move(transports)),
      open_store_(std::move(open_store)),
      started_(started),
      config_(std::move(config)) {
  int n = config_->smtp.max_connections;
  transports_in_use_.assign(static_cast<std::size_t>(n), nullptr);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this, i] { run(i); });
}

void SenderPool::abort_in_flight() {
  abort_ = true;
  std::lock_guard lock(transports_mu_);
  for (Transport* t : transports_in_use_) {
    if (t) t->interrupt();
  }
}

SenderPool::~SenderPool() { stop(); }

void SenderPool::stop() {
  jobs_.close();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void SenderPool::reload(std::shared_ptr<const Config> config) {
  std::lock_guard lock(config_mu_);
  config_ = std::move(config);
  ++generation_;
}

std::shared_ptr<const Config> SenderPool::current_config() {
  std::lock_guard lock(config_mu_);
  return config_;
}

void SenderPool::run(int index) {
  // Deliveries are bulk work: when the CPU is short, a recipient waiting for an opt-out's answer
  // and the store writer recording it come first. (Raising one's own nice value needs no
  // privilege.)
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  if (errno == 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice + kSenderNice);
  std::shared_ptr<const Config> config;
  std::uint64_t generation = ~std::uint64_t{0};
  std::unique_ptr<Composer> composer;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Store> reader;
  std::uint64_t seq = 0;
  std::mt19937_64 rng{std::random_device{}() ^ static_cast<std::uint64_t>(index)};
  JobResult r;
  bool finished = false;
  Hold hold{watch_, index, {}, false};
  std::optional<Suppression> look_up;
  while (auto next = jobs_.next(index, finished ? &r : nullptr)) {
    Job job = std::move(*next);
    auto started = std::chrono::steady_clock::now();
    r = JobResult{};
    r.sender = index;
    r.seq = ++seq;
    r.domain = job.domain;
    r.claimed_at = job.claimed_at;
    try {
      if (generation != generation_.load()) {
        generation = generation_.load();
        config = current_config();
        auto c = Composer::create(config);
        if (!c) throw std::runtime_error("templates: " + c.error().message);
        composer = std::move(c.value());
        auto fresh = transports_(*config, abort_);
        {
          std::lock_guard lock(transports_mu_);
          transports_in_use_[static_cast<std::size_t>(index)] = fresh.get();
        }
        transport = std::move(fresh);
      }
      const ClaimedMessage& m = job.message;
      auto vars = vars_from_json(m.vars_json);
      Result<ComposedMessage> composed =
          vars ? composer->compose({m.category, m.recipient, *vars, m.campaign, m.id, now_millis()})
               : Result<ComposedMessage>(vars.error());
      if (!composed) {
        r.kind = JobResult::Kind::compose_failed;
        r.detail = composed.error().message;
      } else {
        r.message_id_header = composed->message_id;
        // At most one sent-but-unrecorded message per connection: the last outcome of this
        // sender must be durable (journaled, or committed) before the relay gets another.
        store_.wait_committed(index, seq - 1);
        // The last look at the suppression list, immediately before the relay gets the message:
        // the claim saw every suppression made before it, the watch holds those made since. From
        // here until the outcome is recorded the recipient is held, and an opt-out for them waits.
        hold.take(m.recipient, m.category);
        if (const auto& s = hold.look.suppression) {
          r.kind = JobResult::Kind::suppressed;
          r.detail = "recipient suppressed (" + suppression_summary(*s) + ")";
        } else if (!hold.look.known &&
                   (look_up = lookup_store(open_store_, reader, m.recipient, m.category))) {
          r.kind = JobResult::Kind::suppressed;
          r.detail = "recipient suppressed (" + suppression_summary(*look_up) + ")";
        } else if (abort_) {
          r.kind = JobResult::Kind::aborted;
          r.detail = "shutting down";
        } else {
          if (started_) started_->mark(index, m.id);
          AttemptResult a =
              transport->deliver({config->sender.return_path.str(), m.recipient}, composed->data);
          r.classification = classify_attempt(a);
          if (r.classification.drop_connection) transport->drop_connection();
          if (abort_ && r.classification.verdict != Verdict::sent) {
            // Cut off by the end of the shutdown grace period, not refused: hand it back.
            r.kind = JobResult::Kind::aborted;
            r.detail = "shutting down (" + r.classification.reply + ")";
          }
        }
      }
    } catch (const std::exception& e) {
      // Something outside this message broke (templates unreadable after a reload, the
      // database gone): defer it rather than lose or fail it.
      r.kind = JobResult::Kind::aborted;
      r.detail = e.what();
      log_error(std::string("sender ") + std::to_string(index) + ": " + e.what());
      generation = ~std::uint64_t{0};
    }
    r.message = std::move(job.message);
    r.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::steady_clock::now() - started)
                       .count();
    // Record here, not on the loop: the outcome reaches the store worker without another hop.
    UnixMillis now = now_millis();
    std::uniform_real_distribution<double> jitter(0, 1);
    Outcome o = outcome_for(r, config ? config->retry : RetryConfig{}, now, jitter(rng),
                            now + kRelayRetryMs);
    store_.record(o, index, r.seq);
    hold.end();  // after the outcome is recorded: an opt-out that waited goes in after it
    r.recorded_state = o.state;
    finished = true;
  }
  std::lock_guard lock(transports_mu_);
  transports_in_use_[static_cast<std::size_t>(index)] = nullptr;
}

}  // namespace bulkmail
