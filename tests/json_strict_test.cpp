#include "base/json_strict.h"

#include <doctest/doctest.h>

#include <string>

using namespace bulkmail;
using json = nlohmann::json;

TEST_CASE("strict JSON reads what nlohmann::json reads when no key repeats") {
  for (
      const char* text : {
          R"({"to":"a@example.com","vars":{"n":3,"x":1.5,"ok":true,"none":null},"list":[1,[2],{}]})",
          R"([{"a":1},{"a":2}])",    // the same key in two objects
          R"({"a":{"a":{"a":1}}})",  // ... and at three depths
          R"({"A":1,"a":2})",        // keys are case-sensitive
          R"(  "just text"  )",
          "42",
          "-1",
          "18446744073709551615",
          "null",
          "[]",
          "{}",
          R"({"\u00fc":1,"ü2":2})",
      }) {
    CAPTURE(text);
    auto r = parse_json_strict(text);
    REQUIRE(r.ok());
    CHECK(*r == json::parse(text));
  }
}

TEST_CASE("a key given twice in any object is refused, named by its path") {
  struct Case {
    const char* text;
    const char* path;
  };
  const Case cases[] = {
      {R"({"to":"a@x","to":"b@y"})", "to"},
      {R"({"to":"a@x","category":"c","to":"a@x"})", "to"},  // equal values too
      {R"({"vars":{"first_name":"A","first_name":"B"}})", "vars.first_name"},
      {R"({"items":[{"k":1},{"k":1,"k":2}]})", "items[1].k"},
      {R"([[0],[{"a":{"b":1,"b":2}}]])", "[1][0].a.b"},
      {R"({"a\u0062":1,"ab":2})", "ab"},  // the same key spelt with an escape
      {R"({"":1,"":2})", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto r = parse_json_strict(c.text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "duplicate key \"" + std::string(c.path) + "\"");
    CHECK(r.error().field == c.path);
  }
}

TEST_CASE("text that is not one JSON value is refused with nlohmann's reason") {
  for (const char* text : {"", " ", "{", "{\"a\":1", "{\"a\":1} x", "{} {}", "[1,]", "{'a':1}",
                           "{\"a\" 1}", "nul", "\"\xff\""}) {
    CAPTURE(text);
    auto r = parse_json_strict(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.rfind("not valid JSON: ", 0) == 0);
    CHECK(r.error().message.find("[json.exception") == std::string::npos);
    CHECK(r.error().field.empty());  // only a duplicate names one
  }
  auto r = parse_json_strict("{\"a\":1,\n\"b\":}");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("line 2") != std::string::npos);
}

TEST_CASE("deep nesting is parsed without recursion trouble") {
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  auto r = parse_json_strict(deep);
  REQUIRE(r.ok());
  CHECK(r->is_array());
}
