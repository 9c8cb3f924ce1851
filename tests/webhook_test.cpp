// The webhook's routes where the daemon's parts fail: the database refusing a query or an opt-out.
// The store and the dispatcher are replaced here by a backend that runs on the calling thread over
// a real SQLite file and can be told to fail; what works end to end is tests/webhook_test.py.
#include "web/webhook.h"

#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "crypto/unsubscribe_token.h"
#include "store/sqlite/sqlite_store.h"
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
  void dispatch_stats(std::function<void(DispatchStats)> done) override { done(DispatchStats{}); }
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
    c->database = dir / "q.db";
    config = c;
    backend = std::make_unique<InlineBackend>(config->database.string());
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
