// GET /metrics: the Prometheus text format (version 0.0.4) of what the daemon knows: messages by
// state (from the store), deliveries by outcome, SMTP replies by class and the delivery latency
// histogram (from the dispatcher), unsubscribes by source and webhook requests by route and
// status (counted here). prometheus-cpp's core (its registry and text serializer) writes the
// format; bulkmail's own HTTP server answers the scrape, so none of its pull or push parts is used.
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

// The body of one scrape, from copies taken for it. Every counter is a total its owner (the
// dispatcher, WebhookCounters) has kept since the daemon started, so it never goes down between
// scrapes although each scrape builds a fresh registry. Families come in the order prometheus-cpp
// collects them (by type); within one, samples are sorted by their labels, so every scrape lists
// its lines in the same order. A family with no sample is left out, HELP and TYPE included (webhook
// requests, until the first one is answered). Numbers carry up to 16 significant digits ("3",
// "0.005", "6.02", "1700000000.5", "+Inf"). Throws only on a programming error (an invalid metric
// or label name, unsorted bucket bounds).
std::string prometheus_text(const StateCounts& messages, const DispatchStats& dispatch,
                            const WebhookCounters::Snapshot& webhook,
                            const ConfigStatus& config = {});

}  // namespace bulkmail
