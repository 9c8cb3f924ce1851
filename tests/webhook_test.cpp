// The webhook's routes where the daemon's parts fail (the database refusing a query or an
// opt-out), and what the campaign routes and /metrics make of the store's figures (with
// store/status.h, whose JSON and rates the campaign routes answer). The store and the dispatcher
// are replaced here by a backend that runs on the calling thread over a real SQLite file and can
// be told to fail; what works end to end is tests/webhook_test.py.
#include "web/webhook.h"

#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "crypto/unsubscribe_token.h"
#include "sent_queue.h"
#include "store/sqlite/sqlite_store.h"
#include "store/status.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;
namespace http = boost::beast::http;

namespace {

// A database whose every query fails: a real SqliteStore whose tables another connection dropped
// under it, so that what the routes catch is SQLite's own exception, and nothing here grows with
// the Store interface.
std::unique_ptr<SqliteStore> failing_store(const std::string& path) {
  auto store = std::make_unique<SqliteStore>(path);
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  std::vector<std::string> tables;
  {
    SQLite::Statement st(
        db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
    while (st.executeStep()) tables.push_back(st.getColumn(0).getString());
  }
  REQUIRE_FALSE(tables.empty());
  for (const std::string& table : tables) db.exec("DROP TABLE \"" + table + "\"");
  return store;
}

class InlineBackend : public WebhookBackend {
 public:
  explicit InlineBackend(const std::string& db) : path_(db), store_(db) {}
  bool fail_reads = false;
  bool fail_opt_outs = false;
  bool throw_on_opt_out = false;  // as a bug would, on the calling thread
  DispatchStats stats;            // what the dispatcher says

  void opt_out(Suppression s, std::function<void(bool)> done) override {
    if (throw_on_opt_out) throw std::logic_error("a bug");
    if (fail_opt_outs) return done(false);
    store_.suppress({&s, 1}, 1000);
    done(true);
  }
  void write(std::function<void(Store&)> fn) override { fn(store_); }
  void read(std::function<void(Store&)> fn) override {
    if (!fail_reads) return fn(store_);
    if (!failing_) failing_ = failing_store(path_ + ".failing");
    fn(*failing_);
  }
  void dispatch_stats(std::function<void(DispatchStats)> done) override { done(stats); }
  SqliteStore& store() { return store_; }

 private:
  std::string path_;
  SqliteStore store_;
  std::unique_ptr<SqliteStore> failing_;  // what reads get while fail_reads: made at first use
};

struct Fixture {
  TempDir dir;
  std::shared_ptr<const Config> config;
  std::unique_ptr<InlineBackend> backend;
  std::unique_ptr<Webhook> webhook;

  Fixture() {
    auto load = load_config(write_config(dir));
    REQUIRE(load.ok());
    auto c = std::make_shared<Config>(*load.config);
    c->database.sqlite = dir / "q.db";
    config = c;
    backend = std::make_unique<InlineBackend>(config->database.sqlite.string());
    webhook = std::make_unique<Webhook>(config, *backend);
  }

  HttpResponse call(http::verb method, const std::string& target, const std::string& body = "",
                    const std::string& content_type = "") {
    HttpRequest req{method, target, 11};
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
    std::optional<HttpResponse> answer;
    int answers = 0;
    webhook->handle(req, [&](HttpResponse r) {
      ++answers;
      answer = std::move(r);
    });
    REQUIRE(answers == 1);
    return *answer;
  }

  std::string link_path(const std::string& address) {
    TokenCodec codec(config->unsubscribe.keys, 0);
    return "/unsubscribe/" + codec.issue({address, "customer-update", 1'795'000'000});
  }

  // An authorized API request with a JSON body.
  HttpResponse api(http::verb method, const std::string& target, const std::string& body,
                   const std::string& content_type = "application/json") {
    HttpRequest req{method, target, 11};
    req.set(http::field::authorization, "Bearer " + std::string(kTestSecret));
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
    std::optional<HttpResponse> answer;
    webhook->handle(req, [&](HttpResponse r) { answer = std::move(r); });
    REQUIRE(answer);
    return *answer;
  }

  // An authorized request without a body, parsed: its status and its JSON.
  std::pair<http::status, nlohmann::json> api_json(http::verb method, const std::string& target) {
    HttpResponse res = api(method, target, "", "");
    CHECK(res[http::field::content_type] == "application/json");
    return {res.result(), nlohmann::json::parse(res.body())};
  }

  // Campaign "nov", paused by its own rates (sent_queue.h).
  Campaign answered_campaign() { return campaign_that_paused_itself(backend->store()); }

  // The scope an opt-out of `address` was recorded with: "" for all mail, or the category.
  std::optional<std::string> suppressed_scope(const std::string& address) {
    if (backend->store().find_suppression(address, "")) return "";
    if (backend->store().find_suppression(address, "customer-update")) return "customer-update";
    return std::nullopt;
  }
};

const std::string kMessage =
    R"("category":"customer-update","vars":{"first_name":"A","headline":"H","body":"B"})";

}  // namespace

TEST_CASE("healthz and metrics answer 503 when the database fails a query, 200 when it answers") {
  Fixture f;
  CHECK(f.call(http::verb::get, "/healthz").result() == http::status::ok);
  CHECK(f.call(http::verb::get, "/metrics").result() == http::status::ok);
  f.backend->fail_reads = true;
  auto health = f.call(http::verb::get, "/healthz");
  CHECK(health.result() == http::status::service_unavailable);
  // The body says what the database said.
  CHECK(health.body() == "database: no such table: dispatch_state\n");
  CHECK(f.call(http::verb::get, "/metrics").result() == http::status::service_unavailable);
}

TEST_CASE("healthz answers 503 while the database cannot record, though it answers reads") {
  // A full disk: queries work, commits fail, and the dispatcher has paused for it.
  Fixture f;
  f.backend->stats.paused = true;
  f.backend->stats.pause_reason = "the database is not answering (database or disk is full)";
  auto paused_for_other_reasons = f.call(http::verb::get, "/healthz");
  CHECK(paused_for_other_reasons.result() == http::status::ok);
  CHECK(paused_for_other_reasons.body() ==
        "ok (sending paused: the database is not answering (database or disk is full))\n");
  f.backend->stats.database_away = true;
  auto health = f.call(http::verb::get, "/healthz");
  CHECK(health.result() == http::status::service_unavailable);
  CHECK(health.body() == "database: the database is not answering (database or disk is full)\n");
}

TEST_CASE("an opt-out the database could not record is 503 with Retry-After, never 200") {
  Fixture f;
  std::string path = f.link_path("pat@example.com");
  f.backend->fail_opt_outs = true;
  auto failed = f.call(http::verb::post, path, "List-Unsubscribe=One-Click",
                       "application/x-www-form-urlencoded");
  CHECK(failed.result() == http::status::service_unavailable);
  CHECK(failed[http::field::retry_after] == "60");
  CHECK_FALSE(f.backend->store().find_suppression("pat@example.com", "customer-update"));
  f.backend->fail_opt_outs = false;
  auto ok = f.call(http::verb::post, path, "List-Unsubscribe=One-Click",
                   "application/x-www-form-urlencoded");
  CHECK(ok.result() == http::status::ok);
  CHECK(f.backend->store().find_suppression("pat@example.com", "customer-update")->source ==
        "one-click");
  auto snapshot = f.webhook->counters().snapshot();
  CHECK(snapshot.unsubscribes["one-click"] == 1);
  CHECK(snapshot.requests[{"unsubscribe", 503}] == 1);
  CHECK(snapshot.requests[{"unsubscribe", 200}] == 1);
}

TEST_CASE("an API query the database fails is 503 with a JSON error") {
  Fixture f;
  f.backend->fail_reads = true;
  HttpRequest req{http::verb::get, "/api/v1/status", 11};
  req.set(http::field::authorization, "Bearer " + std::string(kTestSecret));
  std::optional<HttpResponse> answer;
  f.webhook->handle(req, [&](HttpResponse r) { answer = std::move(r); });
  REQUIRE(answer);
  CHECK(answer->result() == http::status::service_unavailable);
  CHECK(answer->body() == "{\"error\":\"the database is not available\"}\n");
}

TEST_CASE("a reload swaps the unsubscribe keys: links under a dropped key stop working") {
  Fixture f;
  std::string old_link = f.link_path("kim@example.com");
  CHECK(f.call(http::verb::get, old_link).result() == http::status::ok);
  auto c = std::make_shared<Config>(*f.config);
  c->unsubscribe.keys = {std::string(64, 'n')};
  f.webhook->reload(c);
  CHECK(f.call(http::verb::get, old_link).result() == http::status::bad_request);
}

TEST_CASE("a route that throws is answered 500, and /metrics counts it") {
  Fixture f;
  f.backend->throw_on_opt_out = true;
  auto failed = f.call(http::verb::post, f.link_path("pat@example.com"),
                       "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded");
  CHECK(failed.result() == http::status::internal_server_error);
  CHECK(f.webhook->counters().snapshot().requests[{"unsubscribe", 500}] == 1);
  auto metrics = f.call(http::verb::get, "/metrics");
  CHECK(metrics.body().find(
            "bulkmail_webhook_requests_total{route=\"unsubscribe\",status=\"500\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("one-click stops what the link says, and the page's choice says it instead") {
  // The List-Unsubscribe header carries the category link; the footer's "all mail" link adds
  // ?scope=all. A one-click POST to either does what that link offers.
  struct Case {
    const char* address;
    const char* query;
    const char* body;
    const char* scope;  // what is suppressed afterwards: "" all mail
  };
  const Case cases[] = {
      {"one@example.com", "", "List-Unsubscribe=One-Click", "customer-update"},
      {"two@example.com", "?scope=all", "List-Unsubscribe=One-Click", ""},
      {"three@example.com", "?scope=category", "List-Unsubscribe=One-Click", "customer-update"},
      {"four@example.com", "?scope=all", "scope=category", "customer-update"},
      {"five@example.com", "", "scope=all", ""},
  };
  for (const Case& c : cases) {
    std::string link = std::string(c.address) + c.query + " <- " + c.body;
    CAPTURE(link);
    Fixture f;
    auto res = f.call(http::verb::post, f.link_path(c.address) + c.query, c.body,
                      "application/x-www-form-urlencoded");
    CHECK(res.result() == http::status::ok);
    CHECK(f.suppressed_scope(c.address) == std::optional<std::string>(c.scope));
    bool all = std::string(c.scope).empty();
    CHECK((res.body().find("No more mail from") != std::string::npos) == all);
  }
}

TEST_CASE("the API reads JSON under any spelling of its media type, with parameters") {
  Fixture f;
  int n = 0;
  for (const char* type :
       {"application/json", "APPLICATION/JSON", "Application/Json",
        "application/json; charset=UTF-8", " application/json ;charset=utf-8", ""}) {
    std::string content_type = type;
    CAPTURE(content_type);
    std::string body =
        "{" + std::string(kMessage) + ",\"to\":\"r" + std::to_string(++n) + "@example.com\"}";
    CHECK(f.api(http::verb::post, "/api/v1/messages", body, type).result() ==
          http::status::created);
  }
  for (const char* type : {"text/plain", "application/jsonx", "application/x-www-form-urlencoded",
                           "json", "application/json-seq"}) {
    std::string content_type = type;
    CAPTURE(content_type);
    auto res = f.api(http::verb::post, "/api/v1/messages",
                     "{" + std::string(kMessage) + ",\"to\":\"x@example.com\"}", type);
    CHECK(res.result() == http::status::unsupported_media_type);
  }
}

TEST_CASE("a key given twice anywhere in an API body is 400 naming it, and nothing changes") {
  Fixture f;
  struct Case {
    const char* target;
    std::string body;
    const char* field;
  };
  const Case cases[] = {
      {"/api/v1/messages",
       "{" + std::string(kMessage) + R"(,"to":"a@example.com","to":"b@example.com"})", "to"},
      {"/api/v1/messages",
       R"({"category":"customer-update","to":"c@example.com",)"
       R"("vars":{"first_name":"A","first_name":"B","headline":"H","body":"B"}})",
       "vars.first_name"},
      {"/api/v1/suppressions", R"({"email":"d@example.com","email":"e@example.com"})", "email"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    auto res = f.api(http::verb::post, c.target, c.body);
    CHECK(res.result() == http::status::bad_request);
    auto answer = nlohmann::json::parse(res.body());
    CHECK(answer["field"] == c.field);
    CHECK(answer["error"] == "duplicate key \"" + std::string(c.field) + "\"");
  }
  StateCounts counts = f.backend->store().counts(std::nullopt);
  for (std::int64_t n : counts.by_state) CHECK(n == 0);
  CHECK_FALSE(f.backend->store().find_suppression("d@example.com", ""));
  CHECK_FALSE(f.backend->store().find_suppression("e@example.com", ""));
}

TEST_CASE("a body that is not UTF-8 is a 400 in JSON, never a 500") {
  Fixture f;
  for (std::string body : {std::string(R"({"category":"customer-update)") + "\xff\"}",
                           std::string(R"({"email":")") + "\xc3\x28" + R"(@example.com"})"}) {
    CAPTURE(body);
    auto res = f.api(http::verb::post, "/api/v1/messages", body);
    CHECK(res.result() == http::status::bad_request);
    auto answer = nlohmann::json::parse(res.body());  // valid JSON, whatever the client sent
    CHECK(answer["error"].get<std::string>().rfind("not valid JSON: ", 0) == 0);
  }
}

TEST_CASE(
    "campaign_json: every field, rates as fractions, and a reason only for a pause of its own") {
  Campaign c;
  c.name = "nov";
  c.origin = "/srv/lists/nov.csv";
  c.created_at = 1'700'000'000'000;
  c.last_activity = 1'700'000'000'500;
  c.counts[MessageState::sent] = 990;
  c.counts[MessageState::bounced] = 7;
  c.counts[MessageState::complained] = 3;
  c.counts[MessageState::queued] = 5;
  c.feedback = {1000, 7, 3, 20};
  c.feedback_since_resume = {10, 0, 0, 0};  // not what the rates show
  auto j = campaign_json(c);
  const char* keys[] = {
      "name",         "origin",     "created", "last_activity",    "paused",         "paused_since",
      "pause_reason", "total",      "queued",  "sending",          "deferred",       "sent",
      "bounced",      "complained", "failed",  "suppressed",       "cancelled",      "answered",
      "hard_bounces", "complaints", "blocks",  "hard_bounce_rate", "complaint_rate", "block_rate"};
  for (const char* k : keys) {
    CAPTURE(k);
    CHECK(j.contains(k));
  }
  CHECK(j.size() == std::size(keys));
  CHECK(j["total"] == 1005);
  CHECK(j["answered"] == 1000);
  CHECK(j["hard_bounces"] == 7);
  CHECK(j["complaints"] == 3);
  CHECK(j["blocks"] == 20);
  CHECK(j["complaint_rate"].is_number_float());
  CHECK(j["complaint_rate"] == 0.003);
  CHECK(j["hard_bounce_rate"] == 0.007);
  CHECK(j["block_rate"] == 0.02);
  CHECK(j.dump().find("\"complaint_rate\":0.003,") != std::string::npos);
  CHECK(j["paused"] == false);
  CHECK(j["paused_since"].is_null());
  CHECK(j["pause_reason"].is_null());

  // Paused by a person: no reason. Paused by itself: the reason, with its figures.
  c.paused_at = 1'700'000'001'000;
  j = campaign_json(c);
  CHECK(j["paused"] == true);
  CHECK(j["paused_since"] == "2023-11-14T22:13:21.000Z");
  CHECK(j["pause_reason"].is_null());
  c.pause_reason =
      "complaint rate 0.30% (3 of 1000 answered) reached bounces.pause_complaint_rate 0.3%";
  CHECK(campaign_json(c)["pause_reason"] == c.pause_reason);
  // A reason without a pause (never written so, but never shown as one either).
  c.paused_at.reset();
  CHECK(campaign_json(c)["pause_reason"].is_null());

  // Nothing answered yet: every rate 0, never a division by zero.
  Campaign fresh;
  fresh.name = "dec";
  auto f = campaign_json(fresh);
  CHECK(f["answered"] == 0);
  for (const char* rate : {"hard_bounce_rate", "complaint_rate", "block_rate"}) {
    CAPTURE(rate);
    CHECK(f[rate] == 0.0);
  }
}

TEST_CASE("the rates as status prints them: two decimals, rounded down as the pause's reason is") {
  CHECK(percent_of(3, 1000) == "0.30%");
  CHECK(percent_of(1, 3) == "33.33%");
  CHECK(percent_of(2, 3) == "66.66%");  // rounded down, as auto_pause_reason writes it
  CHECK(percent_of(1, 100'000) == "0.00%");
  CHECK(percent_of(5, 5) == "100.00%");
  CHECK(percent_of(0, 7) == "0.00%");
  CHECK(percent_of(0, 0) == "-");
  CHECK(rate_lines({1000, 2, 3, 0}) ==
        std::vector<std::string>{"hard-bounce rate 0.20% (2 of 1000 answered)",
                                 "complaint rate 0.30% (3 of 1000 answered)",
                                 "block rate 0.00% (0 of 1000 answered)"});
  CHECK(rate_lines({}) == std::vector<std::string>{"no message answered yet"});
  // The same figure as the automatic pause's reason for the same counts.
  FeedbackPolicy policy;
  policy.min_sample = 1;
  CampaignFeedback tripped{1000, 0, 3, 0};
  auto reason = auto_pause_reason(tripped, policy);
  REQUIRE(reason);
  CHECK(reason->rfind(rate_lines(tripped)[1] + " reached ", 0) == 0);

  Campaign c;
  CHECK(pause_cause(c).empty());
  c.paused_at = 1;
  CHECK(pause_cause(c) == " by an operator");
  c.pause_reason = "block rate 6.00% (6 of 100 answered) reached bounces.pause_block_rate 5%";
  CHECK(pause_cause(c) == ", automatically: " + c.pause_reason);
}

TEST_CASE("GET a campaign answers its counts, rates and the reason it paused itself") {
  Fixture f;
  Campaign c = f.answered_campaign();
  auto [status, j] = f.api_json(http::verb::get, "/api/v1/campaigns/nov");
  CHECK(status == http::status::ok);
  CHECK(j == campaign_json(c));
  CHECK(j["answered"] == 5);
  CHECK(j["hard_bounces"] == 1);
  CHECK(j["complaints"] == 1);
  CHECK(j["blocks"] == 1);
  CHECK(j["hard_bounce_rate"] == 0.2);
  CHECK(j["complaint_rate"] == 0.2);
  CHECK(j["block_rate"] == 0.2);
  CHECK(j["bounced"] == 1);
  CHECK(j["complained"] == 1);
  CHECK(j["queued"] == 2);
  CHECK(j["total"] == 7);
  CHECK(j["paused"] == true);
  CHECK(j["pause_reason"] == c.pause_reason);
  CHECK(f.api(http::verb::head, "/api/v1/campaigns/nov", "", "").result() == http::status::ok);

  // The list: every campaign, as the CLI's `campaigns --json`.
  auto [list_status, list] = f.api_json(http::verb::get, "/api/v1/campaigns");
  CHECK(list_status == http::status::ok);
  REQUIRE(list.is_array());
  REQUIRE(list.size() == 1);
  CHECK(list[0] == j);

  // status?campaign=: the campaign's own counts at the top, its figures under "campaign".
  auto [st, s] = f.api_json(http::verb::get, "/api/v1/status?campaign=nov");
  CHECK(st == http::status::ok);
  CHECK(s["queued"] == 2);
  CHECK(s["bounced"] == 1);
  CHECK(s["campaign"] == j);
  CHECK(s["dispatch"].is_object());
  auto [all_st, all] = f.api_json(http::verb::get, "/api/v1/status");
  CHECK(all_st == http::status::ok);
  CHECK_FALSE(all.contains("campaign"));
  CHECK(all["complained"] == 1);
}

TEST_CASE("resume over the API releases a campaign that paused itself, and pause holds it again") {
  Fixture f;
  f.answered_campaign();
  auto [status, j] = f.api_json(http::verb::post, "/api/v1/campaigns/nov/resume");
  CHECK(status == http::status::ok);
  CHECK(j["changed"] == true);
  CHECK(j["released"] == 2);
  CHECK_FALSE(j.contains("held"));
  CHECK(j["paused"] == false);
  CHECK(j["pause_reason"].is_null());
  CHECK(j["name"] == "nov");
  CHECK(j["complaints"] == 1);  // the rates stay: a resume forgets nothing
  CHECK_FALSE(f.backend->store().campaign("nov")->paused_at);
  // Its waiting messages are due again.
  CHECK(f.backend->store().claim_due("test", 10, now_millis(), now_millis() + 60'000).size() == 2);

  // Resuming a running campaign changes nothing, and says so.
  std::tie(status, j) = f.api_json(http::verb::post, "/api/v1/campaigns/nov/resume");
  CHECK(status == http::status::ok);
  CHECK(j["changed"] == false);
  CHECK(j["released"] == 0);

  // A person's pause: no reason, and a second pause changes nothing.
  std::tie(status, j) = f.api_json(http::verb::post, "/api/v1/campaigns/nov/pause");
  CHECK(status == http::status::ok);
  CHECK(j["changed"] == true);
  CHECK(j["held"] == 0);  // the two waiting messages are claimed: being sent, they finish
  CHECK(j["paused"] == true);
  CHECK(j["paused_since"].is_string());
  CHECK(j["pause_reason"].is_null());
  NewMessage later{"nov", "customer-update", "later@example.com", "{}"};
  f.backend->store().enqueue({&later, 1}, "test", now_millis());
  CHECK(f.backend->store().claim_due("test", 10, now_millis(), now_millis() + 60'000).empty());
  std::tie(status, j) = f.api_json(http::verb::post, "/api/v1/campaigns/nov/pause");
  CHECK(j["changed"] == false);
  CHECK(j["held"] == 0);
  std::tie(status, j) = f.api_json(http::verb::post, "/api/v1/campaigns/nov/resume");
  CHECK(j["released"] == 1);
}

TEST_CASE("campaign routes: unknown names are 404, bad names 400, other methods 405 with Allow") {
  Fixture f;
  f.answered_campaign();
  for (const char* target : {"/api/v1/campaigns/dec", "/api/v1/status?campaign=dec"}) {
    CAPTURE(target);
    auto [status, j] = f.api_json(http::verb::get, target);
    CHECK(status == http::status::not_found);
    CHECK(j["error"] == "unknown campaign 'dec' (GET /api/v1/campaigns lists them)");
  }
  for (const char* target : {"/api/v1/campaigns/dec/pause", "/api/v1/campaigns/dec/resume"}) {
    CAPTURE(target);
    CHECK(f.api_json(http::verb::post, target).first == http::status::not_found);
  }
  CHECK_FALSE(f.backend->store().campaign("dec"));  // a pause never creates one

  // Names as the path spells them: percent-decoded, then checked.
  CHECK(f.api_json(http::verb::get, "/api/v1/campaigns/n%6Fv").first == http::status::ok);
  for (const char* target :
       {"/api/v1/campaigns/bad%20name", "/api/v1/campaigns/nov%2Fpause", "/api/v1/campaigns/n%zz",
        "/api/v1/campaigns//pause", "/api/v1/status?campaign=bad%21", "/api/v1/status?campaign="}) {
    CAPTURE(target);
    auto method = std::string(target).ends_with("/pause") ? http::verb::post : http::verb::get;
    auto [status, j] = f.api_json(method, target);
    CHECK(status == http::status::bad_request);
    CHECK(j["field"] == "campaign");
  }
  // Neither the pause's nor the resume's name is a campaign's, nor what follows a name.
  CHECK(f.api_json(http::verb::get, "/api/v1/campaigns/nov/stats").first ==
        http::status::not_found);
  CHECK(f.api_json(http::verb::get, "/api/v1/campaigns/").first == http::status::not_found);

  struct Wrong {
    http::verb method;
    const char* target;
    const char* allow;
  };
  for (const Wrong& w : {Wrong{http::verb::get, "/api/v1/campaigns/nov/pause", "POST"},
                         Wrong{http::verb::delete_, "/api/v1/campaigns/nov/resume", "POST"},
                         Wrong{http::verb::post, "/api/v1/campaigns/nov", "GET, HEAD"},
                         Wrong{http::verb::delete_, "/api/v1/campaigns/nov", "GET, HEAD"},
                         Wrong{http::verb::post, "/api/v1/campaigns", "GET, HEAD"}}) {
    CAPTURE(w.target);
    auto res = f.api(w.method, w.target, "", "");
    CHECK(res.result() == http::status::method_not_allowed);
    CHECK(res[http::field::allow] == w.allow);
  }
  CHECK(f.backend->store().campaign("nov")->paused_at);  // none of these resumed it

  // Without the token, nothing is read or changed.
  auto res = f.call(http::verb::post, "/api/v1/campaigns/nov/resume");
  CHECK(res.result() == http::status::unauthorized);
  CHECK(f.call(http::verb::get, "/api/v1/campaigns/nov").result() == http::status::unauthorized);
  CHECK(f.backend->store().campaign("nov")->paused_at);
}

TEST_CASE("campaign queries the database fails are 503 with a JSON error") {
  Fixture f;
  f.backend->fail_reads = true;
  for (const char* target :
       {"/api/v1/campaigns/nov", "/api/v1/campaigns", "/api/v1/status?campaign=nov"}) {
    CAPTURE(target);
    auto res = f.api(http::verb::get, target, "", "");
    CHECK(res.result() == http::status::service_unavailable);
    CHECK(res.body() == "{\"error\":\"the database is not available\"}\n");
  }
}

TEST_CASE("metrics carry the store's feedback counters, read on each scrape") {
  Fixture f;
  auto before = f.call(http::verb::get, "/metrics").body();
  CHECK(before.find("\nbulkmail_reports_total{kind=\"bounce\"} 0\n") != std::string::npos);
  CHECK(before.find("\nbulkmail_campaign_auto_pauses_total 0\n") != std::string::npos);
  f.answered_campaign();
  auto after = f.call(http::verb::get, "/metrics").body();
  for (const char* line : {"\nbulkmail_reports_total{kind=\"bounce\"} 1\n",
                           "\nbulkmail_reports_total{kind=\"complaint\"} 1\n",
                           "\nbulkmail_report_recipients_total{class=\"hard\"} 1\n",
                           "\nbulkmail_campaign_auto_pauses_total 1\n",
                           "\nbulkmail_messages{state=\"complained\"} 1\n"}) {
    CAPTURE(line);
    CHECK(after.find(line) != std::string::npos);
  }
}
