#include "submission.h"

#include <doctest/doctest.h>

#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("a submission is checked field by field") {
  TempDir dir;
  auto load = load_config(write_config(dir));
  REQUIRE(load.ok());
  const Config& c = *load.config;

  auto m = validate_submission(
      c, {"customer-update", " Jane@Example.com ", {{"first_name", "Jane"}}, "nov-2026"});
  REQUIRE(m.ok());
  CHECK(m->recipient == "jane@example.com");
  CHECK(m->category == "customer-update");
  CHECK(m->campaign == "nov-2026");
  CHECK(m->vars_json == R"({"first_name":"Jane"})");

  struct Bad {
    Submission s;
    const char* reason;
  };
  const Bad bad[] = {
      {{"newsletter", "a@example.com", {}, ""}, "category: unknown category 'newsletter'"},
      {{"customer-update", "not-an-address", {}, ""}, "to: the address has no '@'"},
      {{"customer-update", "a@example.com", {}, "nov 2026"}, "campaign: may hold only"},
      {{"customer-update", "a@example.com", {{"recipient", "x"}}, ""},
       "vars: variable 'recipient'"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.reason);
    auto r = validate_submission(c, b.s);
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.error().message.find(b.reason) != std::string::npos, r.error().message);
  }
}
