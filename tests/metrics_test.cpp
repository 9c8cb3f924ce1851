#include "web/metrics.h"

#include <doctest/doctest.h>

#include <map>
#include <sstream>

using namespace bulkmail;

namespace {

// name{labels} -> value, from the text format; every line is a comment or a sample.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("metrics: states, outcomes, reply classes, a cumulative histogram, webhook counters") {
  StateCounts counts;
  counts[MessageState::queued] = 7;
  counts[MessageState::sent] = 3;
  DispatchStats d;
  d.sent = 3;
  d.deferred = 1;
  d.replies_by_class[2] = 3;
  d.replies_by_class[4] = 1;
  d.latency_buckets[0] = 1;   // <= 1 ms
  d.latency_buckets[2] = 2;   // <= 10 ms
  d.latency_buckets[10] = 1;  // > 5 s
  d.latency_sum_ms = 6020;
  WebhookCounters web;
  web.request("unsubscribe", 200);
  web.request("unsubscribe", 200);
  web.request("api", 401);
  web.unsubscribe("one-click");

  std::string text = prometheus_text(counts, d, web.snapshot());
  auto s = samples(text);
  CHECK(s["bulkmail_messages{state=\"queued\"}"] == "7");
  CHECK(s["bulkmail_messages{state=\"cancelled\"}"] == "0");
  CHECK(s["bulkmail_deliveries_total{outcome=\"sent\"}"] == "3");
  CHECK(s["bulkmail_smtp_replies_total{class=\"4xx\"}"] == "1");
  CHECK(s["bulkmail_smtp_replies_total{class=\"5xx\"}"] == "0");
  CHECK(s["bulkmail_delivery_latency_seconds_bucket{le=\"0.001\"}"] == "1");
  CHECK(s["bulkmail_delivery_latency_seconds_bucket{le=\"0.005\"}"] == "1");
  CHECK(s["bulkmail_delivery_latency_seconds_bucket{le=\"0.01\"}"] == "3");
  CHECK(s["bulkmail_delivery_latency_seconds_bucket{le=\"5\"}"] == "3");
  CHECK(s["bulkmail_delivery_latency_seconds_bucket{le=\"+Inf\"}"] == "4");
  CHECK(s["bulkmail_delivery_latency_seconds_count"] == "4");
  CHECK(s["bulkmail_delivery_latency_seconds_sum"] == "6.02");
  CHECK(s["bulkmail_unsubscribes_total{source=\"one-click\"}"] == "1");
  CHECK(s["bulkmail_unsubscribes_total{source=\"web\"}"] == "0");
  CHECK(s["bulkmail_webhook_requests_total{route=\"unsubscribe\",status=\"200\"}"] == "2");
  CHECK(s["bulkmail_webhook_requests_total{route=\"api\",status=\"401\"}"] == "1");
  CHECK(text.find("# TYPE bulkmail_delivery_latency_seconds histogram") != std::string::npos);
  CHECK(s["bulkmail_config_last_reload_successful"] == "1");

  ConfigStatus failed;
  failed.loaded_at = 1'700'000'000'500;
  failed.reload_problem = "bulkmail.yaml:3:1: throttle: x";
  failed.reload_failed_at = 1'700'000'001'000;
  auto f = samples(prometheus_text(counts, d, web.snapshot(), failed));
  CHECK(f["bulkmail_config_last_reload_successful"] == "0");
  CHECK(f["bulkmail_config_loaded_timestamp_seconds"] == "1700000000.500");
}
