#include "web/metrics.h"

#include <algorithm>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "store/message_state.h"

namespace bulkmail {

void WebhookCounters::request(std::string_view route, int status) {
  std::lock_guard lock(mu_);
  ++counts_.requests[{std::string(route), status}];
}

void WebhookCounters::unsubscribe(std::string_view source) {
  std::lock_guard lock(mu_);
  ++counts_.unsubscribes[std::string(source)];
}

void WebhookCounters::refused(HttpRefusal why) {
  std::lock_guard lock(mu_);
  ++counts_.refused[static_cast<std::size_t>(why)];
}

WebhookCounters::Snapshot WebhookCounters::snapshot() const {
  std::lock_guard lock(mu_);
  return counts_;
}

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Registry;

Family<Gauge>& gauges(Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

Family<Counter>& counters(Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

// A family of one gauge without labels.
void gauge(Registry& r, const char* name, const char* help, double value) {
  gauges(r, name, help).Add({}).Set(value);
}

// The registry is built for one scrape, so a counter starts at 0 and takes the total its owner
// (the dispatcher, WebhookCounters) has kept since the daemon started: it never goes down between
// scrapes because that total never does.
void add_total(Family<Counter>& family, const prometheus::Labels& labels, std::int64_t total) {
  family.Add(labels).Increment(static_cast<double>(total));
}

template <typename Map, typename Key>
std::int64_t count_of(const Map& counts, const Key& key) {
  auto it = counts.find(key);
  return it == counts.end() ? 0 : it->second;
}

void messages_by_state(Registry& r, const StateCounts& messages) {
  auto& family = gauges(r, "bulkmail_messages", "Messages in the queue by state.");
  for (MessageState s : kAllMessageStates) {
    family.Add({{"state", std::string(to_string(s))}}).Set(static_cast<double>(messages[s]));
  }
}

void deliveries_and_replies(Registry& r, const DispatchStats& d) {
  auto& deliveries = counters(r, "bulkmail_deliveries_total",
                              "Delivery attempts by outcome since the daemon started.");
  const std::pair<const char*, std::int64_t> outcomes[] = {
      {"sent", d.sent},       {"deferred", d.deferred},     {"failed", d.failed},
      {"bounced", d.bounced}, {"suppressed", d.suppressed}, {"released", d.released}};
  for (const auto& [outcome, n] : outcomes) add_total(deliveries, {{"outcome", outcome}}, n);

  auto& replies = counters(r, "bulkmail_smtp_replies_total",
                           "SMTP replies by class (none: no reply, e.g. the connection failed).");
  for (int cls : {2, 4, 5, 0}) {
    add_total(replies, {{"class", cls == 0 ? std::string("none") : std::to_string(cls) + "xx"}},
              count_of(d.replies_by_class, cls));
  }
}

// The dispatcher keeps the buckets itself (a count per bucket, the last one +Inf): a fresh
// histogram takes them all at once.
void latency_histogram(Registry& r, const DispatchStats& d) {
  prometheus::Histogram::BucketBoundaries bounds;
  for (double ms : DispatchStats::kLatencyBoundsMs) bounds.push_back(ms / 1000.0);
  std::vector<double> per_bucket;
  for (std::int64_t n : d.latency_buckets) per_bucket.push_back(static_cast<double>(n));
  prometheus::BuildHistogram()
      .Name("bulkmail_delivery_latency_seconds")
      .Help("Time from handing a message to a sender to the relay's final reply.")
      .Register(r)
      .Add({}, bounds)
      .ObserveMultiple(per_bucket, d.latency_sum_ms / 1000.0);
}

void dispatcher_and_config_gauges(Registry& r, const DispatchStats& d, const ConfigStatus& c) {
  gauge(r, "bulkmail_in_flight", "Deliveries in progress.", static_cast<double>(d.in_flight));
  gauge(r, "bulkmail_buffered", "Claimed messages waiting for a sender.",
        static_cast<double>(d.buffered));
  gauge(r, "bulkmail_dispatch_paused",
        "1 while sending is paused (relay trouble, or the daily limit is reached).",
        d.paused ? 1 : 0);
  gauge(r, "bulkmail_sent_today",
        "Messages the relay accepted since 00:00 UTC (what throttle.daily_limit counts).",
        static_cast<double>(d.sent_today));
  gauge(r, "bulkmail_daily_limit", "throttle.daily_limit; 0 when there is none.",
        static_cast<double>(d.daily_limit));
  gauge(r, "bulkmail_config_last_reload_successful",
        "0 while the config file on disk failed to reload (the daemon runs on the older one).",
        c.reload_failed() ? 0 : 1);
  // Milliseconds survive: the serializer writes 16 significant digits.
  gauge(r, "bulkmail_config_loaded_timestamp_seconds",
        "When the config in effect was loaded (Unix time).",
        static_cast<double>(c.loaded_at) / 1000.0);
}

void webhook_counters(Registry& r, const WebhookCounters::Snapshot& web) {
  auto& unsubscribes =
      counters(r, "bulkmail_unsubscribes_total",
               "Opt-outs received by source (one-click, web, api) since the daemon started.");
  for (const char* source : {"one-click", "web", "api"}) {
    add_total(unsubscribes, {{"source", source}}, count_of(web.unsubscribes, source));
  }
  auto& requests = counters(r, "bulkmail_webhook_requests_total",
                            "HTTP requests by route and status since the daemon started.");
  for (const auto& [key, n] : web.requests) {
    add_total(requests, {{"route", key.first}, {"status", std::to_string(key.second)}}, n);
  }
  auto& refused = counters(
      r, "bulkmail_http_refused_total",
      "Answers the HTTP server gave on its own since the daemon started, by reason: malformed "
      "(400), unsupported-coding (501), header-too-large (431), body-too-large (413), "
      "read-timeout (408), server-full and client-full (503, the connection budget), no-answer "
      "(503, a route too slow).");
  for (const auto& [why, name] : kHttpRefusals) {
    add_total(refused, {{"reason", std::string(name)}}, web.refused[static_cast<std::size_t>(why)]);
  }
}

// Counters the store keeps in its database: what the reports that came back by mail did.
void report_counters(Registry& r, const FeedbackCounters& store) {
  std::map<std::string, std::int64_t> by_name(store.begin(), store.end());
  auto& reports = counters(
      r, "bulkmail_reports_total",
      "Reports taken in by mail by kind (bounce, delay, complaint, auto-reply, unknown), kept "
      "in the database.");
  for (const char* kind : {"bounce", "delay", "complaint", "auto-reply", "unknown"}) {
    add_total(reports, {{"kind", kind}}, count_of(by_name, std::string("report:") + kind));
  }
  auto& recipients = counters(
      r, "bulkmail_report_recipients_total",
      "Recipients of reports taken in by mail by class (hard, soft, policy, unknown), kept in "
      "the database.");
  for (const char* cls : {"hard", "soft", "policy", "unknown"}) {
    add_total(recipients, {{"class", cls}}, count_of(by_name, std::string("class:") + cls));
  }
  struct Single {
    const char* name;
    const char* counter;
    const char* help;
  };
  const Single singles[] = {
      {"bulkmail_reports_unmatched_total", "unmatched",
       "Reports taken in by mail that name no message bulkmail sent."},
      {"bulkmail_reports_forged_total", "forged",
       "Reports taken in by mail that name a message by a token bulkmail did not sign."},
      {"bulkmail_reports_recipient_mismatch_total", "mismatch",
       "Reports whose recipient is not the one the message they name went to."},
      {"bulkmail_reports_not_sent_total", "not-sent",
       "Reports about a message the relay never accepted: nothing changed."},
      {"bulkmail_reports_duplicate_total", "duplicate",
       "Reports taken in again (the same bytes): nothing changed."},
      {"bulkmail_campaign_auto_pauses_total", "auto-pause",
       "Times a campaign paused itself on its complaint, hard-bounce or block rate."},
  };
  for (const Single& s : singles) {
    add_total(counters(r, s.name, s.help), {}, count_of(by_name, std::string(s.counter)));
  }
}

}  // namespace

std::string prometheus_text(const StateCounts& messages, const DispatchStats& d,
                            const WebhookCounters::Snapshot& web, const ConfigStatus& config,
                            const FeedbackCounters& feedback) {
  Registry registry;
  messages_by_state(registry, messages);
  deliveries_and_replies(registry, d);
  latency_histogram(registry, d);
  dispatcher_and_config_gauges(registry, d, config);
  webhook_counters(registry, web);
  report_counters(registry, feedback);

  // A family keeps its samples in a hash table: sort them, so that every scrape lists its lines in
  // the same order.
  std::vector<prometheus::MetricFamily> families = registry.Collect();
  for (auto& family : families) {
    std::sort(family.metric.begin(), family.metric.end(),
              [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
                return a.label < b.label;
              });
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace bulkmail
