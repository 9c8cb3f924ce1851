#include "delivery/sender.h"

#include <chrono>

#include "base/log.h"
#include "delivery/outcome.h"

namespace bulkmail {

SuppressionWatch::Look Sender::Hold::take(const std::string& address, const std::string& category) {
  end();
  auto look = watch.look_and_hold(sender, address, category);
  held = !look.suppression;
  return look;
}

void Sender::Hold::end() {
  if (held) watch.end_hold(sender);
  held = false;
}

Sender::Sender(int index, const SenderServices& services, std::shared_ptr<const Config> config,
               std::shared_ptr<const Composer> composer)
    : index_(index),
      services_(services),
      config_(std::move(config)),
      prototype_(std::move(composer)),
      rng_(std::random_device{}() ^ static_cast<std::uint64_t>(index)),
      hold_{services.watch, index, false} {}

Sender::~Sender() { hold_.end(); }

void Sender::reload(std::shared_ptr<const Config> config,
                    std::shared_ptr<const Composer> composer) {
  config_ = std::move(config);
  composer_.reset();
  prototype_ = std::move(composer);
  stale_ = true;
}

void Sender::interrupt() {
  std::lock_guard lock(transport_mu_);
  if (transport_) transport_->interrupt();
}

void Sender::refresh() {
  auto fresh = services_.transports(*config_, services_.abort);
  {
    std::lock_guard lock(transport_mu_);
    transport_ = std::move(fresh);
  }
  stale_ = false;
}

Result<ComposedMessage> Sender::compose(const ClaimedMessage& m) {
  auto vars = vars_from_json(m.vars_json);
  if (!vars) return vars.error();
  if (!composer_) composer_ = prototype_->clone();
  return composer_->compose({m.category, m.recipient, *vars, m.campaign, m.id, now_millis()},
                            scratch_);
}

std::optional<std::string> Sender::last_look(const ClaimedMessage& m) {
  // The claim saw every suppression made before it; the watch holds those made since.
  auto look = hold_.take(m.recipient, m.category);
  std::optional<Suppression> s = std::move(look.suppression);
  if (!s && !look.known) {
    if (!reader_) reader_ = services_.open_store();
    s = reader_->find_suppression(m.recipient, m.category);
  }
  if (!s) return std::nullopt;
  return "recipient suppressed (" + suppression_summary(*s) + ")";
}

void Sender::deliver(const ClaimedMessage& m, const ComposedMessage& message, JobResult& r) {
  if (services_.started) services_.started->mark(index_, m.id);
  // The composer chose the envelope sender: the message's VERP address, or sender.return_path.
  AttemptResult a = transport_->deliver({message.envelope_from, m.recipient}, message.data);
  r.classification = classify_attempt(a);
  if (r.classification.drop_connection) transport_->drop_connection();
  if (services_.abort && r.classification.verdict != Verdict::sent) {
    // Cut off by the end of the shutdown grace period, not refused: hand it back.
    r.kind = JobResult::Kind::aborted;
    r.detail = "shutting down (" + r.classification.reply + ")";
  }
}

void Sender::record(JobResult& r) {
  // Recorded here, not on the event loop: the outcome reaches the store worker without another
  // hop.
  UnixMillis now = now_millis();
  std::uniform_real_distribution<double> jitter(0, 1);
  Outcome o = outcome_for(r, config_ ? config_->retry : RetryConfig{}, now, jitter(rng_),
                          now + kRelayRetryMs);
  services_.store.record(o, index_, r.seq);
  hold_.end();  // after the outcome is recorded: an opt-out that waited goes in after it
  r.recorded_state = o.state;
}

JobResult Sender::handle(Job job) {
  auto started = std::chrono::steady_clock::now();
  JobResult r;
  r.sender = index_;
  r.seq = ++seq_;
  r.domain = job.domain;
  r.claimed_at = job.claimed_at;
  const ClaimedMessage& m = job.message;
  try {
    if (stale_) refresh();
    Result<ComposedMessage> composed = compose(m);
    if (!composed) {
      r.kind = JobResult::Kind::compose_failed;
      r.detail = composed.error().message;
    } else {
      r.message_id_header = composed->message_id;
      services_.store.wait_committed(index_, r.seq - 1);
      if (auto why = last_look(m)) {
        r.kind = JobResult::Kind::suppressed;
        r.detail = std::move(*why);
      } else if (services_.abort) {
        r.kind = JobResult::Kind::aborted;
        r.detail = "shutting down";
      } else {
        deliver(m, *composed, r);
      }
    }
  } catch (const std::exception& e) {
    // Something outside this message broke (no connection could be set up, the database gone):
    // defer it rather than lose or fail it, and start the next job with a fresh connection.
    r.kind = JobResult::Kind::aborted;
    r.detail = e.what();
    log_error("sender " + std::to_string(index_) + ": " + e.what());
    stale_ = true;
  }
  r.message = std::move(job.message);
  r.latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count();
  record(r);
  return r;
}

}  // namespace bulkmail
