#include "delivery/quota_worker.h"

#include <exception>
#include <string>

#include "base/log.h"

namespace bulkmail {

QuotaWorker::QuotaWorker(std::unique_ptr<ClusterQuota> quota)
    : quota_(std::move(quota)), thread_([this] { loop(); }) {}

QuotaWorker::~QuotaWorker() { stop(); }

void QuotaWorker::exchange(QuotaAsk ask, Done done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    queue_.emplace_back(std::move(ask), std::move(done));
  }
  wake_.notify_one();
}

void QuotaWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void QuotaWorker::loop() {
  for (;;) {
    std::pair<QuotaAsk, Done> job;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    std::optional<QuotaAnswer> answer;
    try {
      answer = quota_->exchange(job.first);
      if (failing_) log_info("shared throttle: the database answers again");
      failing_ = false;
    } catch (const std::exception& e) {
      if (!failing_) {
        log_warning(std::string("shared throttle: the database did not answer (") + e.what() +
                    "); sending waits and asks again");
      }
      failing_ = true;
    }
    job.second(job.first, std::move(answer));
  }
}

}  // namespace bulkmail
