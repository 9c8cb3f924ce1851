#include "compose/vars.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace bulkmail;

TEST_CASE("--var assignments") {
  auto kv = parse_var_assignment("first_name=Jane=Doe");
  REQUIRE(kv.ok());
  CHECK(kv->first == "first_name");
  CHECK(kv->second == "Jane=Doe");

  struct Bad {
    const char* arg;
    const char* reason;
  };
  const Bad bad[] = {
      {"novalue", "no '='"},
      {"=x", "empty"},
      {"1abc=x", "must start with a letter"},
      {"first name=x", "only letters"},
      {"a.b=x", "only letters"},
      {"postal_address=Nowhere", "filled in by bulkmail"},
      {"unsubscribe_url=https://evil.example", "filled in by bulkmail"},
      {"note=a\x01b", "control character"},
      {"note=one\rtwo", "carriage return that does not end a line"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.arg);
    auto r = parse_var_assignment(b.arg);
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.error().message.find(b.reason) != std::string::npos, r.error().message);
  }
}

TEST_CASE("variable names: letters, digits, '_' and '-', starting with a letter or '_'") {
  const std::string good[] = {"first_name", "_x", "Plan-2", std::string(64, 'a')};
  for (const std::string& name : good) {
    CAPTURE(name);
    CHECK(check_var_name(name).ok());
  }
  struct Bad {
    std::string name;
    const char* error;
  };
  const Bad bad[] = {
      {"", "a variable name is empty"},
      {std::string(65, 'a'), "variable name is longer than 64 characters"},
      {"1st", "variable '1st' must start with a letter or '_'"},
      {"-x", "variable '-x' must start with a letter or '_'"},
      {"first name", "variable name 'first name' may hold only letters, digits, '_' and '-'"},
      {"recipient", "variable 'recipient' is filled in by bulkmail and cannot be set"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.name);
    auto r = check_var_name(b.name);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == b.error);
  }
}

TEST_CASE("variable values: text of at most 8 KiB, line breaks allowed") {
  CHECK(check_var_value("").ok());
  CHECK(check_var_value("Zoë\r\nsecond line\n").ok());
  CHECK(check_var_value(std::string(8 * 1024, 'a')).ok());
  struct Bad {
    std::string value;
    const char* error;
  };
  const Bad bad[] = {
      {std::string(8 * 1024 + 1, 'a'), "is longer than 8 KiB"},
      {"a\rb", "holds a carriage return that does not end a line"},
      {std::string("a\0b", 3), "holds a control character"},
      {"\xff", "is not valid UTF-8"},
  };
  for (const Bad& b : bad) {
    auto r = check_var_value(b.value);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == b.error);
  }
}

TEST_CASE("variables serialize to a JSON object") {
  auto j = vars_to_json({{"first_name", "Zoë"}, {"plan", "Fiber 500"}});
  REQUIRE(j.ok());
  CHECK(*j == R"({"first_name":"Zoë","plan":"Fiber 500"})");
  CHECK(vars_to_json({}).value() == "{}");
  CHECK_FALSE(vars_to_json({{"x", std::string(9000, 'a')}}).ok());
  CHECK_FALSE(vars_to_json({{"organization", "Someone Else"}}).ok());
}

TEST_CASE("JSON scalars become variable text, anything else does not") {
  using nlohmann::json;
  CHECK(*json_scalar_text(json("Ada")) == "Ada");
  CHECK(*json_scalar_text(json(3)) == "3");
  CHECK(*json_scalar_text(json(2.5)) == "2.5");
  CHECK(*json_scalar_text(json(true)) == "true");
  CHECK_FALSE(json_scalar_text(json(nullptr)));
  CHECK_FALSE(json_scalar_text(json::array({1})));
  CHECK_FALSE(json_scalar_text(json::object({{"a", 1}})));
}

TEST_CASE("stored variables read back as they were written") {
  Vars v = {{"first_name", "Zoë"}, {"plan", "Fiber \"500\""}, {"empty", ""}};
  auto back = vars_from_json(vars_to_json(v).value());
  REQUIRE(back.ok());
  CHECK(*back == v);
  CHECK(vars_from_json("{}").value().empty());
  CHECK(vars_from_json(R"( {"a":"1", "a":"2"} )").value().at("a") == "2");
}

TEST_CASE("stored variables that are not an object of text are refused, naming the variable") {
  struct Bad {
    const char* json;
    const char* problem;
  };
  const Bad bad[] = {
      {"", "not a JSON object"},
      {"[]", "not a JSON object"},
      {R"("text")", "not a JSON object"},
      {"null", "not a JSON object"},
      {R"({"a":"1")", "not a JSON object"},
      {R"({"a":"1"} {"b":"2"})", "not a JSON object"},
      {R"({"plan":3})", "variable 'plan' is not text"},
      {R"({"ok":"x","flag":true})", "variable 'flag' is not text"},
      {R"({"nested":{"x":"y"}})", "variable 'nested' is not text"},
      {R"({"list":["y"]})", "variable 'list' is not text"},
      {R"({"gone":null})", "variable 'gone' is not text"},
  };
  for (const Bad& b : bad) {
    std::string json = b.json;
    CAPTURE(json);
    auto r = vars_from_json(json);
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.error().message.find(b.problem) != std::string::npos, r.error().message);
  }
}

TEST_CASE("every built-in variable name, and only those, is refused as a message's variable") {
  for (std::string_view builtin : kBuiltinVars) {
    std::string name(builtin);
    CAPTURE(name);
    CHECK(is_builtin_var(name));
    auto named = check_var_name(name);
    REQUIRE_FALSE(named.ok());
    CHECK(named.error().message ==
          "variable '" + name + "' is filled in by bulkmail and cannot be set");
  }
  for (const char* name : {"first_name", "unsubscribe", "postal", "Organization", ""}) {
    CAPTURE(name);
    CHECK_FALSE(is_builtin_var(name));
  }
}
