#include "web/api_request.h"

#include <doctest/doctest.h>

#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;
using json = nlohmann::json;

namespace {
std::shared_ptr<const Config> config() {
  static TempDir dir;
  static auto load = load_config(write_config(dir));
  REQUIRE(load.ok());
  return load.config;
}
}  // namespace

TEST_CASE("only JSON bodies are read, whatever the case and parameters of their media type") {
  CHECK(is_json_media_type(""));
  CHECK(is_json_media_type("application/json"));
  CHECK(is_json_media_type("Application/JSON; charset=UTF-8"));
  CHECK_FALSE(is_json_media_type("text/plain"));
  CHECK_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
}

TEST_CASE("a body is one JSON object of known fields, or an error naming the field at fault") {
  struct Row {
    const char* body;
    const char* message;
    const char* field;
  };
  for (Row r :
       {Row{R"({"to":"a@x","to":"b@x"})", "duplicate key \"to\"", "to"},
        Row{R"({"vars":{"a":1,"a":2}})", "duplicate key \"vars.a\"", "vars.a"},
        Row{R"({"to":"a@x","cc":"b@x"})", "cc: unknown field", "cc"},
        Row{R"(["to"])", "not a JSON object", ""}, Row{R"("to")", "not a JSON object", ""}}) {
    CAPTURE(r.body);
    auto o = read_json_object(r.body, {"to", "vars"});
    REQUIRE_FALSE(o.ok());
    CHECK(o.error().message == r.message);
    CHECK(o.error().field == r.field);
  }
  auto bad = read_json_object("{", {"to"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.rfind("not valid JSON: ", 0) == 0);
  CHECK(bad.error().field.empty());
  auto ok = read_json_object(R"({"to":"a@x"})", {"to", "vars"});
  REQUIRE(ok.ok());
  CHECK((*ok)["to"] == "a@x");
}

TEST_CASE("a text field is absent, null or text, and nothing else") {
  json body = {{"s", "x"}, {"n", nullptr}, {"i", 3}, {"o", json::object()}, {"b", true}};
  CHECK(text_field(body, "s")->value() == "x");
  CHECK_FALSE(text_field(body, "n")->has_value());
  CHECK_FALSE(text_field(body, "absent")->has_value());
  for (const char* name : {"i", "o", "b"}) {
    auto v = text_field(body, name);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().field == name);
    CHECK(v.error().message == std::string(name) + ": must be text");
  }
  for (const char* name : {"n", "absent"}) {
    auto v = required_text_field(body, name);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().message == std::string(name) + ": is required");
  }
}

TEST_CASE("a message body is read field by field, each refusal naming its field") {
  struct Row {
    json body;
    const char* field;
  };
  for (const Row& r :
       {Row{{{"to", "a@example.com"}}, "category"}, Row{{{"category", "customer-update"}}, "to"},
        Row{{{"category", 1}, {"to", "a@example.com"}}, "category"},
        Row{{{"category", "c"}, {"to", "a@x"}, {"campaign", false}}, "campaign"},
        Row{{{"category", "c"}, {"to", "a@x"}, {"vars", "x"}}, "vars"},
        Row{{{"category", "c"}, {"to", "a@x"}, {"vars", {{"n", {1, 2}}}}}, "vars.n"},
        Row{{{"category", "c"}, {"to", "a@x"}, {"vars", {{"n", {{"a", 1}}}}}}, "vars.n"}}) {
    CAPTURE(r.body.dump());
    auto s = submission_from_json(r.body);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().field == r.field);
    CHECK(s.error().message.rfind(std::string(r.field) + ": ", 0) == 0);
  }
  auto s = submission_from_json({{"category", "customer-update"},
                                 {"to", "Ann@Example.com"},
                                 {"campaign", nullptr},
                                 {"vars", {{"first_name", "Ann"}, {"n", 3}, {"yes", true}}}});
  REQUIRE(s.ok());
  CHECK(s->to == "Ann@Example.com");  // validate_submission normalizes it
  CHECK(s->campaign.empty());
  CHECK(s->vars.at("n") == "3");
  CHECK(s->vars.at("yes") == "true");
}

TEST_CASE("validation names the field of a message that cannot be queued") {
  auto c = config();
  struct Row {
    Submission s;
    const char* field;
  };
  for (const Row& r :
       {Row{{"nope", "a@example.com", {}, ""}, "category"},
        Row{{"customer-update", "not an address", {}, ""}, "to"},
        Row{{"customer-update", "a@example.com", {}, "bad campaign!"}, "campaign"},
        Row{{"customer-update", "a@example.com", {{"unsubscribe_url", "x"}}, ""},
            "vars.unsubscribe_url"},
        Row{{"customer-update", "a@example.com", {{"headline", std::string(9000, 'x')}}, ""},
            "vars.headline"}}) {
    auto m = validate_submission(*c, r.s);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().field == r.field);
    std::string top = std::string(r.field).substr(0, std::string(r.field).find('.'));
    CHECK(m.error().message.rfind(top + ": ", 0) == 0);
  }
}

TEST_CASE(
    "a suppression body is refused field by field, and reads manual when no reason is given") {
  auto c = config();
  struct Row {
    json body;
    const char* field;
    const char* message;
  };
  for (const Row& r :
       {Row{json::object(), "email", "email: is required"},
        Row{{{"email", "no-at-sign"}}, "email", nullptr},
        Row{{{"email", "a@example.com"}, {"category", "nope"}},
            "category",
            "category: unknown category"},
        Row{{{"email", "a@example.com"}, {"reason", "bored"}}, "reason", nullptr},
        Row{{{"email", "a@example.com"}, {"reason", 7}}, "reason", "reason: must be text"}}) {
    CAPTURE(r.body.dump());
    auto s = suppression_from_json(r.body, *c);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().field == r.field);
    if (r.message) CHECK(s.error().message == r.message);
  }
  auto bad_reason = suppression_from_json({{"email", "a@example.com"}, {"reason", "x"}}, *c);
  CHECK(bad_reason.error().message == "reason: must be one of " + suppression_reason_list());

  auto s = suppression_from_json({{"email", "Ann@Example.COM"}}, *c);
  REQUIRE(s.ok());
  CHECK(s->address == "ann@example.com");
  CHECK(s->category.empty());
  CHECK(s->reason == SuppressionReason::manual);
  CHECK(s->source == "api");
  auto cat = suppression_from_json(
      {{"email", "a@example.com"}, {"category", "customer-update"}, {"reason", "complaint"}}, *c);
  REQUIRE(cat.ok());
  CHECK(cat->category == "customer-update");
  CHECK(cat->reason == SuppressionReason::complaint);
}

TEST_CASE("a suppression's path and query name its address, category and consent") {
  auto c = config();
  auto t = suppression_target("ann%40example.com", "category=customer-update&force=true", *c);
  REQUIRE(t.ok());
  CHECK(t->address == "ann@example.com");
  CHECK(t->category == "customer-update");
  CHECK(t->force);
  auto plain = suppression_target("ann@example.com", "", *c);
  REQUIRE(plain.ok());
  CHECK(plain->category.empty());
  CHECK_FALSE(plain->force);
  CHECK_FALSE(suppression_target("ann@example.com", "force=yes", *c)->force);

  struct Row {
    const char* path;
    const char* query;
    const char* field;
  };
  for (Row r : {Row{"ann%4", "", "email"}, Row{"no-at-sign", "", "email"},
                Row{"ann@example.com", "category=nope", "category"}}) {
    CAPTURE(r.path);
    auto bad = suppression_target(r.path, r.query, *c);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().field == r.field);
  }
}

TEST_CASE("a campaign's path segment is percent-decoded, then checked as a campaign name") {
  struct Row {
    const char* segment;
    const char* name;  // nullptr: refused
  };
  for (Row r : {Row{"nov-2026", "nov-2026"}, Row{"nov%2D2026", "nov-2026"},
                Row{"q4%3Apromo_1.b", "q4:promo_1.b"}, Row{"", nullptr}, Row{"nov%2F2026", nullptr},
                Row{"nov+2026", nullptr}, Row{"nov%202026", nullptr}, Row{"nov%2", nullptr},
                Row{"caf%C3%A9", nullptr}}) {
    CAPTURE(r.segment);
    auto name = campaign_segment(r.segment);
    if (r.name) {
      REQUIRE(name.ok());
      CHECK(*name == r.name);
    } else {
      REQUIRE_FALSE(name.ok());
      CHECK(name.error().field == "campaign");
      CHECK(name.error().message.rfind("campaign: ", 0) == 0);
    }
  }
  CHECK(campaign_segment(std::string(100, 'a')).ok());
  auto too_long = campaign_segment(std::string(101, 'a'));
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().message == "campaign: is longer than 100 characters");
  CHECK(campaign_segment("").error().message == "campaign: is empty");
}
