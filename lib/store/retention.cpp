#include "store/retention.h"

#include <boost/asio/post.hpp>

#include <string>
#include <vector>

#include "base/log.h"
#include "store/store_worker.h"

namespace bulkmail {

namespace {
constexpr UnixMillis kDayMs = 86'400'000;
}

RetentionCutoffs retention_cutoffs(const RetentionConfig& config, UnixMillis now) {
  RetentionCutoffs c;
  if (config.message_days > 0) c.messages_before = now - config.message_days * kDayMs;
  if (config.event_days > 0) c.events_before = now - config.event_days * kDayMs;
  return c;
}

Retention::Retention(boost::asio::io_context& io, StoreWorker& worker, RetentionConfig config,
                     std::chrono::milliseconds first_delay)
    : io_(io),
      worker_(worker),
      config_(config),
      first_delay_(first_delay),
      timer_(io),
      self_(std::make_shared<Retention*>(this)) {}

Retention::~Retention() = default;

void Retention::start() { schedule(first_delay_); }

void Retention::reload(RetentionConfig config) { config_ = config; }

void Retention::stop() {
  timer_.cancel();
  self_.reset();
}

void Retention::schedule(std::chrono::milliseconds delay) {
  if (!self_) return;
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) run_batch();
  });
}

void Retention::run_batch() {
  RetentionCutoffs cut = retention_cutoffs(config_, now_millis());
  if (!cut.messages_before && !cut.events_before) return schedule(kInterval);
  std::weak_ptr<Retention*> weak = self_;
  worker_.run([cut, weak, &io = io_](Store& s) {
    PruneResult r;
    try {
      r = s.prune(cut.messages_before, cut.events_before, kBatch);
    } catch (const std::exception& e) {
      log_error(std::string("retention: ") + e.what() + "; trying again in an hour");
      r.messages = r.events = -1;
    }
    boost::asio::post(io, [weak, r] {
      if (auto self = weak.lock()) (*self)->batch_done(r);
    });
  });
}

void Retention::batch_done(PruneResult r) {
  if (r.messages < 0) {
    pass_ = {};
    return schedule(kInterval);
  }
  pass_.messages += r.messages;
  pass_.events += r.events;
  if (r.more) {
    return schedule(kBatchGap);  // more to look at: the next batch, after a gap for deliveries
  }
  std::vector<std::string> parts;
  if (pass_.messages > 0) {
    parts.push_back(std::to_string(pass_.messages) + " finished messages older than " +
                    std::to_string(config_.message_days) + " days");
  }
  if (pass_.events > 0) {
    parts.push_back(std::to_string(pass_.events) + " events older than " +
                    std::to_string(config_.event_days) + " days");
  }
  if (!parts.empty()) {
    log_info("retention: deleted " + parts.front() +
             (parts.size() > 1 ? " and " + parts.back() : std::string()));
  }
  pass_ = {};
  schedule(kInterval);
}

}  // namespace bulkmail
