// GET /metrics: the Prometheus text format (version 0.0.4) of what the daemon knows: messages by
// state (from the store), deliveries by outcome, SMTP replies by class and the delivery latency
// histogram (from the dispatcher), unsubscribes by source and webhook requests by route and
// status (counted here).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "config/config_status.h"
#include "delivery/dispatch_stats.h"
#include "store/store.h"

namespace bulkmail {

// Counters the webhook's threads bump; read as a consistent copy.
class WebhookCounters {
 public:
  struct Snapshot {
    std::map<std::pair<std::string, int>, std::int64_t> requests;  // (route, status)
    std::map<std::string, std::int64_t> unsubscribes;              // by source
  };

  void request(std::string_view route, int status);
  void unsubscribe(std::string_view source);
  Snapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  Snapshot counts_;
};

std::string prometheus_text(const StateCounts& messages, const DispatchStats& dispatch,
                            const WebhookCounters::Snapshot& webhook,
                            const ConfigStatus& config = {});

}  // namespace bulkmail
