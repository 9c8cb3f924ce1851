#include "web/metrics.h"

#include <doctest/doctest.h>

#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace bulkmail;

namespace {

struct FamilyHead {
  const char* name;
  const char* type;
  const char* help;
};

// Every family /metrics has, with its TYPE and HELP as dashboards and alerts know them.
const FamilyHead kFamilies[] = {
    {"bulkmail_messages", "gauge", "Messages in the queue by state."},
    {"bulkmail_deliveries_total", "counter",
     "Delivery attempts by outcome since the daemon started."},
    {"bulkmail_smtp_replies_total", "counter",
     "SMTP replies by class (none: no reply, e.g. the connection failed)."},
    {"bulkmail_delivery_latency_seconds", "histogram",
     "Time from handing a message to a sender to the relay's final reply."},
    {"bulkmail_in_flight", "gauge", "Deliveries in progress."},
    {"bulkmail_buffered", "gauge", "Claimed messages waiting for a sender."},
    {"bulkmail_dispatch_paused", "gauge",
     "1 while sending is paused (relay trouble, or the daily limit is reached)."},
    {"bulkmail_sent_today", "gauge",
     "Messages the relay accepted since 00:00 UTC (what throttle.daily_limit counts)."},
    {"bulkmail_daily_limit", "gauge", "throttle.daily_limit; 0 when there is none."},
    {"bulkmail_config_last_reload_successful", "gauge",
     "0 while the config file on disk failed to reload (the daemon runs on the older one)."},
    {"bulkmail_config_loaded_timestamp_seconds", "gauge",
     "When the config in effect was loaded (Unix time)."},
    {"bulkmail_unsubscribes_total", "counter",
     "Opt-outs received by source (one-click, web, api) since the daemon started."},
    {"bulkmail_webhook_requests_total", "counter",
     "HTTP requests by route and status since the daemon started."},
    {"bulkmail_http_refused_total", "counter",
     "Answers the HTTP server gave on its own since the daemon started, by reason: malformed "
     "(400), unsupported-coding (501), header-too-large (431), body-too-large (413), "
     "read-timeout (408), server-full and client-full (503, the connection budget), no-answer "
     "(503, a route too slow)."},
    {"bulkmail_reports_total", "counter",
     "Reports taken in by mail by kind (bounce, delay, complaint, auto-reply, unknown), kept in "
     "the database."},
    {"bulkmail_report_recipients_total", "counter",
     "Recipients of reports taken in by mail by class (hard, soft, policy, unknown), kept in the "
     "database."},
    {"bulkmail_reports_unmatched_total", "counter",
     "Reports taken in by mail that name no message bulkmail sent."},
    {"bulkmail_reports_forged_total", "counter",
     "Reports taken in by mail that name a message by a token bulkmail did not sign."},
    {"bulkmail_reports_recipient_mismatch_total", "counter",
     "Reports whose recipient is not the one the message they name went to."},
    {"bulkmail_reports_not_sent_total", "counter",
     "Reports about a message the relay never accepted: nothing changed."},
    {"bulkmail_reports_duplicate_total", "counter",
     "Reports taken in again (the same bytes): nothing changed."},
    {"bulkmail_campaign_auto_pauses_total", "counter",
     "Times a campaign paused itself on its complaint, hard-bounce or block rate."},
};

struct Scrape {
  std::map<std::string, std::string> value;  // name{labels} -> value
  std::vector<std::string> order;            // name{labels}, as written
  int comments = 0;
};

// The text format as a scraper reads it: every line is "# HELP", "# TYPE" or "name{labels} value"
// (no timestamp), and every sample follows the TYPE line of its family.
Scrape parse(const std::string& text) {
  Scrape out;
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  std::istringstream in(text);
  std::string line, family;
  while (std::getline(in, line)) {
    REQUIRE(!line.empty());
    if (line[0] == '#') {
      ++out.comments;
      bool head = line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0;
      CHECK_MESSAGE(head, line);
      if (line.rfind("# TYPE ", 0) == 0) family = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    auto space = line.find(' ');
    REQUIRE(space != std::string::npos);
    CHECK_MESSAGE(line.find(' ', space + 1) == std::string::npos, line);
    std::string key = line.substr(0, space);
    CHECK_MESSAGE((!family.empty() && key.rfind(family, 0) == 0), line);
    out.value[key] = line.substr(space + 1);
    out.order.push_back(key);
  }
  return out;
}

// The samples of one family, in the order written.
std::vector<std::string> in_family(const Scrape& s, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& key : s.order) {
    if (key.rfind(prefix, 0) == 0) out.push_back(key.substr(prefix.size()));
  }
  return out;
}

struct Sample {
  StateCounts counts;
  DispatchStats d;
  WebhookCounters web;

  Sample() {
    counts[MessageState::queued] = 7;
    counts[MessageState::sent] = 3;
    d.sent = 3;
    d.deferred = 1;
    d.replies_by_class[2] = 3;
    d.replies_by_class[4] = 1;
    d.latency_buckets[0] = 1;   // <= 1 ms
    d.latency_buckets[2] = 2;   // <= 10 ms
    d.latency_buckets[10] = 1;  // > 5 s
    d.latency_sum_ms = 6020;
    d.in_flight = 2;
    d.buffered = 5;
    d.paused = true;
    d.sent_today = 123'456'789'012;  // whole, not 1.23457e+11
    d.daily_limit = 0;
    web.request("unsubscribe", 200);
    web.request("unsubscribe", 200);
    web.request("api", 401);
    web.unsubscribe("one-click");
    web.refused(HttpRefusal::read_timeout);
    web.refused(HttpRefusal::read_timeout);
    web.refused(HttpRefusal::server_full);
  }
};

}  // namespace

TEST_CASE("metrics: every family has its HELP and TYPE, and nothing else is a comment") {
  Sample f;
  std::string text = prometheus_text(f.counts, f.d, f.web.snapshot());
  for (const auto& fam : kFamilies) {
    std::string head = std::string("# HELP ") + fam.name + " " + fam.help + "\n# TYPE " + fam.name +
                       " " + fam.type + "\n";
    CHECK_MESSAGE(text.find(head) != std::string::npos, fam.name);
  }
  CHECK(parse(text).comments == 2 * static_cast<int>(std::size(kFamilies)));
}

TEST_CASE("metrics: states, outcomes, reply classes, a cumulative histogram, webhook counters") {
  Sample f;
  auto s = parse(prometheus_text(f.counts, f.d, f.web.snapshot()));
  // 9 states, 6 outcomes, 4 reply classes, 11 buckets with sum and count, 7 gauges, 3 sources,
  // the 2 (route, status) pairs seen, the 8 reasons the HTTP server refuses for, and the store's
  // 5 report kinds, 4 recipient classes and 6 single counters (all 0 here): no sample more, none
  // missing.
  CHECK(s.value.size() == 9 + 6 + 4 + 13 + 7 + 3 + 2 + 8 + 5 + 4 + 6);
  CHECK(s.order.size() == s.value.size());

  CHECK(s.value["bulkmail_messages{state=\"queued\"}"] == "7");
  CHECK(s.value["bulkmail_messages{state=\"sent\"}"] == "3");
  CHECK(s.value["bulkmail_messages{state=\"cancelled\"}"] == "0");
  CHECK(s.value["bulkmail_deliveries_total{outcome=\"sent\"}"] == "3");
  CHECK(s.value["bulkmail_deliveries_total{outcome=\"deferred\"}"] == "1");
  CHECK(s.value["bulkmail_deliveries_total{outcome=\"released\"}"] == "0");
  CHECK(s.value["bulkmail_smtp_replies_total{class=\"2xx\"}"] == "3");
  CHECK(s.value["bulkmail_smtp_replies_total{class=\"4xx\"}"] == "1");
  CHECK(s.value["bulkmail_smtp_replies_total{class=\"5xx\"}"] == "0");
  CHECK(s.value["bulkmail_smtp_replies_total{class=\"none\"}"] == "0");

  const std::pair<const char*, const char*> buckets[] = {
      {"0.001", "1"}, {"0.005", "1"}, {"0.01", "3"}, {"0.025", "3"}, {"0.05", "3"}, {"0.1", "3"},
      {"0.25", "3"},  {"0.5", "3"},   {"1", "3"},    {"5", "3"},     {"+Inf", "4"}};
  for (const auto& bucket : buckets) {
    CAPTURE(bucket.first);
    CHECK(s.value[std::string("bulkmail_delivery_latency_seconds_bucket{le=\"") + bucket.first +
                  "\"}"] == bucket.second);
  }
  CHECK(s.value["bulkmail_delivery_latency_seconds_count"] == "4");
  CHECK(s.value["bulkmail_delivery_latency_seconds_sum"] == "6.02");

  CHECK(s.value["bulkmail_in_flight"] == "2");
  CHECK(s.value["bulkmail_buffered"] == "5");
  CHECK(s.value["bulkmail_dispatch_paused"] == "1");
  CHECK(s.value["bulkmail_sent_today"] == "123456789012");
  CHECK(s.value["bulkmail_daily_limit"] == "0");
  CHECK(s.value["bulkmail_config_last_reload_successful"] == "1");
  CHECK(s.value["bulkmail_config_loaded_timestamp_seconds"] == "0");

  CHECK(s.value["bulkmail_unsubscribes_total{source=\"one-click\"}"] == "1");
  CHECK(s.value["bulkmail_unsubscribes_total{source=\"web\"}"] == "0");
  CHECK(s.value["bulkmail_unsubscribes_total{source=\"api\"}"] == "0");
  CHECK(s.value["bulkmail_webhook_requests_total{route=\"unsubscribe\",status=\"200\"}"] == "2");
  CHECK(s.value["bulkmail_webhook_requests_total{route=\"api\",status=\"401\"}"] == "1");
  CHECK(s.value["bulkmail_http_refused_total{reason=\"read-timeout\"}"] == "2");
  CHECK(s.value["bulkmail_http_refused_total{reason=\"server-full\"}"] == "1");
  CHECK(s.value["bulkmail_http_refused_total{reason=\"malformed\"}"] == "0");
}

TEST_CASE("metrics: a family's samples are sorted by their labels, the same on every scrape") {
  Sample f;
  auto s = parse(prometheus_text(f.counts, f.d, f.web.snapshot()));
  CHECK(in_family(s, "bulkmail_messages") ==
        std::vector<std::string>{"{state=\"bounced\"}", "{state=\"cancelled\"}",
                                 "{state=\"complained\"}", "{state=\"deferred\"}",
                                 "{state=\"failed\"}", "{state=\"queued\"}", "{state=\"sending\"}",
                                 "{state=\"sent\"}", "{state=\"suppressed\"}"});
  CHECK(in_family(s, "bulkmail_smtp_replies_total") ==
        std::vector<std::string>{"{class=\"2xx\"}", "{class=\"4xx\"}", "{class=\"5xx\"}",
                                 "{class=\"none\"}"});
  CHECK(in_family(s, "bulkmail_webhook_requests_total") ==
        std::vector<std::string>{"{route=\"api\",status=\"401\"}",
                                 "{route=\"unsubscribe\",status=\"200\"}"});
  CHECK(prometheus_text(f.counts, f.d, f.web.snapshot()) ==
        prometheus_text(f.counts, f.d, f.web.snapshot()));
}

TEST_CASE("metrics: counters carry their owner's totals, so a later scrape never shows less") {
  Sample f;
  auto before = parse(prometheus_text(f.counts, f.d, f.web.snapshot()));
  ++f.d.sent;
  f.web.request("unsubscribe", 200);
  auto after = parse(prometheus_text(f.counts, f.d, f.web.snapshot()));
  CHECK(before.value["bulkmail_deliveries_total{outcome=\"sent\"}"] == "3");
  CHECK(after.value["bulkmail_deliveries_total{outcome=\"sent\"}"] == "4");
  CHECK(after.value["bulkmail_webhook_requests_total{route=\"unsubscribe\",status=\"200\"}"] ==
        "3");
}

TEST_CASE("metrics: no webhook request yet leaves that family out, HELP and TYPE included") {
  Sample f;
  WebhookCounters none;
  std::string text = prometheus_text(f.counts, f.d, none.snapshot());
  CHECK(text.find("bulkmail_webhook_requests_total") == std::string::npos);
  CHECK(parse(text).value["bulkmail_unsubscribes_total{source=\"one-click\"}"] == "0");
  // The server's refusals, though, are there from the start, every reason at 0: an alert on
  // their rate has a series to look at before the first attack.
  auto refused = in_family(parse(text), "bulkmail_http_refused_total");
  CHECK(refused ==
        std::vector<std::string>{"{reason=\"body-too-large\"}", "{reason=\"client-full\"}",
                                 "{reason=\"header-too-large\"}", "{reason=\"malformed\"}",
                                 "{reason=\"no-answer\"}", "{reason=\"read-timeout\"}",
                                 "{reason=\"server-full\"}", "{reason=\"unsupported-coding\"}"});
  for (const auto& [why, name] : kHttpRefusals) {
    CHECK(parse(text).value["bulkmail_http_refused_total{reason=\"" + std::string(name) + "\"}"] ==
          "0");
  }
}

TEST_CASE("metrics: a failed reload, and when the config in effect was loaded, to the ms") {
  Sample f;
  ConfigStatus failed;
  failed.loaded_at = 1'700'000'000'500;
  failed.reload_problem = "bulkmail.yaml:3:1: throttle: x";
  failed.reload_failed_at = 1'700'000'001'000;
  std::string text = prometheus_text(f.counts, f.d, f.web.snapshot(), failed);
  // What tests/webhook_test.py looks for, byte for byte.
  CHECK(text.find("\nbulkmail_config_last_reload_successful 0\n") != std::string::npos);
  CHECK(parse(text).value["bulkmail_config_loaded_timestamp_seconds"] == "1700000000.5");

  ConfigStatus ok;
  ok.loaded_at = 1'700'000'000'123;
  auto s = parse(prometheus_text(f.counts, f.d, f.web.snapshot(), ok));
  CHECK(s.value["bulkmail_config_last_reload_successful"] == "1");
  CHECK(s.value["bulkmail_config_loaded_timestamp_seconds"] == "1700000000.123");
}

TEST_CASE(
    "metrics: the store's feedback counters, each in its family, and unknown names left out") {
  Sample f;
  const FeedbackCounters store = {
      {"auto-pause", 1},
      {"class:hard", 7},
      {"class:policy", 2},
      {"class:soft", 4},
      {"duplicate", 3},
      {"forged", 5},
      {"mismatch", 6},
      {"not-sent", 8},
      {"report:auto-reply", 9},
      {"report:bounce", 11},
      {"report:complaint", 12},
      {"report:delay", 13},
      {"report:unknown", 14},
      {"unmatched", 15},
      // A newer version's names, in the same database: not this version's to publish.
      {"report:digest", 99},
      {"class:transient", 98},
      {"quarantined", 97}};
  std::string text = prometheus_text(f.counts, f.d, f.web.snapshot(), {}, store);
  auto s = parse(text);
  const std::pair<const char*, const char*> expected[] = {
      {"bulkmail_reports_total{kind=\"bounce\"}", "11"},
      {"bulkmail_reports_total{kind=\"delay\"}", "13"},
      {"bulkmail_reports_total{kind=\"complaint\"}", "12"},
      {"bulkmail_reports_total{kind=\"auto-reply\"}", "9"},
      {"bulkmail_reports_total{kind=\"unknown\"}", "14"},
      {"bulkmail_report_recipients_total{class=\"hard\"}", "7"},
      {"bulkmail_report_recipients_total{class=\"soft\"}", "4"},
      {"bulkmail_report_recipients_total{class=\"policy\"}", "2"},
      {"bulkmail_report_recipients_total{class=\"unknown\"}", "0"},
      {"bulkmail_reports_unmatched_total", "15"},
      {"bulkmail_reports_forged_total", "5"},
      {"bulkmail_reports_recipient_mismatch_total", "6"},
      {"bulkmail_reports_not_sent_total", "8"},
      {"bulkmail_reports_duplicate_total", "3"},
      {"bulkmail_campaign_auto_pauses_total", "1"},
  };
  for (const auto& [key, value] : expected) {
    CAPTURE(key);
    REQUIRE(s.value.count(key) == 1);
    CHECK(s.value[key] == value);
  }
  // Every sample the fixture has, and these: nothing of the unknown names.
  CHECK(s.value.size() == 9 + 6 + 4 + 13 + 7 + 3 + 2 + 8 + 5 + 4 + 6);
  for (const char* unknown : {"digest", "transient", "quarantined", "99", "98", "97"}) {
    CAPTURE(unknown);
    CHECK(text.find(unknown) == std::string::npos);
  }
  CHECK(in_family(s, "bulkmail_reports_total") ==
        std::vector<std::string>{"{kind=\"auto-reply\"}", "{kind=\"bounce\"}",
                                 "{kind=\"complaint\"}", "{kind=\"delay\"}", "{kind=\"unknown\"}"});
  CHECK(in_family(s, "bulkmail_report_recipients_total") ==
        std::vector<std::string>{"{class=\"hard\"}", "{class=\"policy\"}", "{class=\"soft\"}",
                                 "{class=\"unknown\"}"});
}

TEST_CASE("metrics: the store's counters start at 0 and carry its totals from scrape to scrape") {
  Sample f;
  auto none = parse(prometheus_text(f.counts, f.d, f.web.snapshot()));
  CHECK(none.value["bulkmail_reports_total{kind=\"complaint\"}"] == "0");
  CHECK(none.value["bulkmail_report_recipients_total{class=\"hard\"}"] == "0");
  CHECK(none.value["bulkmail_campaign_auto_pauses_total"] == "0");
  // Totals kept in the database: as large as a long-lived queue's, written whole.
  FeedbackCounters store = {{"report:complaint", 2}, {"class:hard", 123'456'789'012}};
  auto s = parse(prometheus_text(f.counts, f.d, f.web.snapshot(), {}, store));
  CHECK(s.value["bulkmail_reports_total{kind=\"complaint\"}"] == "2");
  CHECK(s.value["bulkmail_report_recipients_total{class=\"hard\"}"] == "123456789012");
  CHECK(s.value["bulkmail_reports_total{kind=\"bounce\"}"] == "0");
}
