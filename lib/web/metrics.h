// GET /metrics: the Prometheus text format (version 0.0.4) of what the daemon knows: messages by
// state and what the reports that came back by mail did (from the store), deliveries by outcome,
// SMTP replies by class and the delivery latency histogram (from the dispatcher), unsubscribes by
// source, webhook requests by route and status, and the HTTP server's own refusals by reason
// (counted here). prometheus-cpp's core (its
// registry and text serializer) writes the format; bulkmail's own HTTP server answers the scrape,
// so none of its pull or push parts is used.
//
// There is no gauge of paused campaigns: Store::campaigns() counts every message of every
// campaign, a second pass over the whole queue on every scrape (with the count by state, what a
// scrape already costs most). bulkmail_campaign_auto_pauses_total says that a campaign paused
// itself; `bulkmailctl campaigns` and GET /api/v1/campaigns say which, and why.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_status.h"
#include "delivery/dispatch_stats.h"
#include "store/store.h"
#include "web/http_refusal.h"

namespace bulkmail {

// Counters the webhook's and the HTTP server's threads bump; read as a consistent copy.
class WebhookCounters {
 public:
  struct Snapshot {
    std::map<std::pair<std::string, int>, std::int64_t> requests;  // (route, status)
    std::map<std::string, std::int64_t> unsubscribes;              // by source
    std::array<std::int64_t, kHttpRefusals.size()> refused{};      // by HttpRefusal
  };

  void request(std::string_view route, int status);
  void unsubscribe(std::string_view source);
  void refused(HttpRefusal why);
  Snapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  Snapshot counts_;
};

// The store's feedback counters by name (Store::feedback_counters): "report:bounce", "class:hard",
// "unmatched", "forged", "mismatch", "not-sent", "duplicate", "auto-pause".
using FeedbackCounters = std::vector<std::pair<std::string, std::int64_t>>;

// The body of one scrape, from copies taken for it. Every counter is a total its owner has kept,
// so it never goes down between scrapes although each scrape builds a fresh registry: the
// dispatcher and WebhookCounters since the daemon started, the store's feedback counters in the
// database (they survive a restart). `feedback` becomes
//   bulkmail_reports_total{kind}               "report:<kind>": bounce, delay, complaint,
//                                              auto-reply, unknown
//   bulkmail_report_recipients_total{class}    "class:<class>": hard, soft, policy, unknown
//   bulkmail_reports_unmatched_total           "unmatched"
//   bulkmail_reports_forged_total              "forged"
//   bulkmail_reports_recipient_mismatch_total  "mismatch"
//   bulkmail_reports_not_sent_total            "not-sent"
//   bulkmail_reports_duplicate_total           "duplicate"
//   bulkmail_campaign_auto_pauses_total        "auto-pause"
// each label and family present from the start (0 until counted); a name not listed here (a
// newer version's, in the same database) is left out. Families come in the order prometheus-cpp
// collects them (by type); within one, samples are sorted by their labels, so every scrape lists
// its lines in the same order. A family with no sample is left out, HELP and TYPE included (webhook
// requests, until the first one is answered). Numbers carry up to 16 significant digits ("3",
// "0.005", "6.02", "1700000000.5", "+Inf"). Throws only on a programming error (an invalid metric
// or label name, unsorted bucket bounds).
std::string prometheus_text(const StateCounts& messages, const DispatchStats& dispatch,
                            const WebhookCounters::Snapshot& webhook,
                            const ConfigStatus& config = {}, const FeedbackCounters& feedback = {});

}  // namespace bulkmail
