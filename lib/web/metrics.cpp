#include "web/metrics.h"

#include <cstdio>

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

WebhookCounters::Snapshot WebhookCounters::snapshot() const {
  std::lock_guard lock(mu_);
  return counts_;
}

namespace {

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void sample(std::string& out, const std::string& name, const std::string& labels,
            std::int64_t value) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

// Label values here are bulkmail's own words (states, routes, sources), never user input; still,
// escape as the format requires.
std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

std::string prometheus_text(const StateCounts& messages, const DispatchStats& d,
                            const WebhookCounters::Snapshot& web, const ConfigStatus& config) {
  std::string out;
  out.reserve(4096);
  family(out, "bulkmail_messages", "gauge", "Messages in the queue by state.");
  for (MessageState s : kAllMessageStates) {
    sample(out, "bulkmail_messages", label("state", to_string(s)), messages[s]);
  }

  family(out, "bulkmail_deliveries_total", "counter",
         "Delivery attempts by outcome since the daemon started.");
  const std::pair<const char*, std::int64_t> outcomes[] = {
      {"sent", d.sent},       {"deferred", d.deferred},     {"failed", d.failed},
      {"bounced", d.bounced}, {"suppressed", d.suppressed}, {"released", d.released}};
  for (const auto& [name, n] : outcomes) {
    sample(out, "bulkmail_deliveries_total", label("outcome", name), n);
  }

  family(out, "bulkmail_smtp_replies_total", "counter",
         "SMTP replies by class (none: no reply, e.g. the connection failed).");
  for (int cls : {2, 4, 5, 0}) {
    auto it = d.replies_by_class.find(cls);
    sample(out, "bulkmail_smtp_replies_total",
           label("class", cls == 0 ? std::string("none") : std::to_string(cls) + "xx"),
           it == d.replies_by_class.end() ? 0 : it->second);
  }

  family(out, "bulkmail_delivery_latency_seconds", "histogram",
         "Time from handing a message to a sender to the relay's final reply.");
  std::int64_t cumulative = 0;
  for (std::size_t b = 0; b < d.latency_buckets.size(); ++b) {
    cumulative += d.latency_buckets[b];
    std::string le = b < DispatchStats::kLatencyBoundsMs.size()
                         ? number(DispatchStats::kLatencyBoundsMs[b] / 1000.0)
                         : std::string("+Inf");
    sample(out, "bulkmail_delivery_latency_seconds_bucket", label("le", le), cumulative);
  }
  out += "bulkmail_delivery_latency_seconds_sum " + number(d.latency_sum_ms / 1000.0) + "\n";
  sample(out, "bulkmail_delivery_latency_seconds_count", "", cumulative);

  family(out, "bulkmail_in_flight", "gauge", "Deliveries in progress.");
  sample(out, "bulkmail_in_flight", "", d.in_flight);
  family(out, "bulkmail_buffered", "gauge", "Claimed messages waiting for a sender.");
  sample(out, "bulkmail_buffered", "", d.buffered);
  family(out, "bulkmail_dispatch_paused", "gauge",
         "1 while sending is paused (relay trouble, or the daily limit is reached).");
  sample(out, "bulkmail_dispatch_paused", "", d.paused ? 1 : 0);
  family(out, "bulkmail_sent_today", "gauge",
         "Messages the relay accepted since 00:00 UTC (what throttle.daily_limit counts).");
  sample(out, "bulkmail_sent_today", "", d.sent_today);
  family(out, "bulkmail_daily_limit", "gauge", "throttle.daily_limit; 0 when there is none.");
  sample(out, "bulkmail_daily_limit", "", d.daily_limit);
  family(out, "bulkmail_config_last_reload_successful", "gauge",
         "0 while the config file on disk failed to reload (the daemon runs on the older one).");
  sample(out, "bulkmail_config_last_reload_successful", "", config.reload_failed() ? 0 : 1);
  family(out, "bulkmail_config_loaded_timestamp_seconds", "gauge",
         "When the config in effect was loaded (Unix time).");
  char loaded[32];  // whole: %g would round a Unix time to six digits
  std::snprintf(loaded, sizeof loaded, "%.3f", static_cast<double>(config.loaded_at) / 1000.0);
  out += std::string("bulkmail_config_loaded_timestamp_seconds ") + loaded + "\n";

  family(out, "bulkmail_unsubscribes_total", "counter",
         "Opt-outs received by source (one-click, web, api) since the daemon started.");
  for (const char* source : {"one-click", "web", "api"}) {
    auto it = web.unsubscribes.find(source);
    sample(out, "bulkmail_unsubscribes_total", label("source", source),
           it == web.unsubscribes.end() ? 0 : it->second);
  }

  family(out, "bulkmail_webhook_requests_total", "counter",
         "HTTP requests by route and status since the daemon started.");
  for (const auto& [key, n] : web.requests) {
    sample(out, "bulkmail_webhook_requests_total",
           label("route", key.first) + "," + label("status", std::to_string(key.second)), n);
  }
  return out;
}

}  // namespace bulkmail
