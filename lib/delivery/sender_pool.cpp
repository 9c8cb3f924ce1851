#include "delivery/sender_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

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

Result<SenderPool::Prepared> SenderPool::prepare(std::shared_ptr<const Config> config,
                                                 int senders) {
  auto first = Composer::create(config);
  if (!first) return first.error();
  Prepared p{config, {}, first.value()->clone(/*sign=*/false)};
  for (int i = 1; i < senders; ++i) p.composers.push_back(first.value()->clone());
  p.composers.insert(p.composers.begin(), std::move(first.value()));
  return p;
}

SenderPool::SenderPool(Prepared prepared, StoreWorker& store, SuppressionWatch& watch,
                       JobSource& jobs, TransportFactory transports, StoreOpener open_store,
                       StartedDeliveries* started)
    : jobs_(jobs), services_{store,   watch, std::move(transports), std::move(open_store),
                             started, abort_} {
  int n = static_cast<int>(prepared.composers.size());
  for (int i = 0; i < n; ++i) {
    senders_.push_back(std::make_unique<Sender>(
        i, services_, prepared.config, std::move(prepared.composers[static_cast<std::size_t>(i)])));
  }
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
  if (prepared.composers.size() != senders_.size())
    throw std::invalid_argument("SenderPool::reload: prepared for another number of senders");
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
      sender.reload(next_.config, std::move(next_.composers[static_cast<std::size_t>(index)]));
    }
    finished = sender.handle(std::move(*job));
  }
}

}  // namespace bulkmail
