#include "delivery/sender_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

namespace bulkmail {
namespace {
// Deliveries are bulk work: when the CPU is short, a recipient waiting for an opt-out's answer
// and the store writer recording it come first. (Raising one's own nice value needs no
// privilege.)
void lower_this_threads_priority(int by) {
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  if (errno == 0) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice + by);
}
}  // namespace

Result<SenderPool::Prepared> SenderPool::prepare(std::shared_ptr<const Config> config) {
  auto composer = Composer::create(config);
  if (!composer) return composer.error();
  auto for_checks = composer.value()->clone(/*sign=*/false);
  return Prepared{config, std::move(composer.value()), std::move(for_checks)};
}

SenderPool::SenderPool(Prepared prepared, StoreWorker& store, SuppressionWatch& watch,
                       JobSource& jobs, TransportFactory transports, StoreOpener open_store,
                       StartedDeliveries* started)
    : jobs_(jobs), services_{store,   watch, std::move(transports), std::move(open_store),
                             started, abort_} {
  for (int i = 0; i < prepared.config->smtp.max_connections; ++i)
    senders_.push_back(std::make_unique<Sender>(i, services_, prepared.config, prepared.composer));
}

void SenderPool::start() {
  for (int i = 0; i < size(); ++i) threads_.emplace_back([this, i] { run(i); });
}

void SenderPool::abort_in_flight() {
  abort_ = true;  // first: a sender that stops waiting below sees it, and delivers nothing
  // A sender may be waiting for its last outcome's commit before its next delivery, which a
  // database that cannot write never gives.
  services_.store.give_up_waits();
  for (auto& s : senders_) s->interrupt();
}

SenderPool::~SenderPool() { stop(); }

void SenderPool::stop() {
  jobs_.close();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void SenderPool::reload(Prepared prepared) {
  std::lock_guard lock(config_mu_);
  next_ = std::move(prepared);
  ++generation_;
}

void SenderPool::run(int index) {
  lower_this_threads_priority(kSenderNice);
  Sender& sender = *senders_[static_cast<std::size_t>(index)];
  std::uint64_t generation = 0;  // the senders were made with the config of generation 0
  std::optional<JobResult> finished;
  while (auto job = jobs_.next(index, finished ? &*finished : nullptr)) {
    if (generation != generation_.load()) {
      std::lock_guard lock(config_mu_);
      generation = generation_.load();
      sender.reload(next_.config, next_.composer);
    }
    finished = sender.handle(std::move(*job));
  }
}

}  // namespace bulkmail
