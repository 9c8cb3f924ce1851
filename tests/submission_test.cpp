#include "intake/submission.h"

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

TEST_CASE("campaign names: 1-100 letters, digits and . _ : -") {
  for (const std::string& name :
       {std::string("nov-2026"), std::string("a.b_c:d"), std::string(100, 'x')}) {
    CAPTURE(name);
    CHECK(check_campaign_name(name).ok());
  }
  struct Bad {
    std::string name;
    const char* error;
  };
  const Bad bad[] = {
      {"", "is empty"},
      {std::string(101, 'x'), "is longer than 100 characters"},
      {"nov 2026", "may hold only letters, digits and . _ : -"},
      {"nov/2026", "may hold only letters, digits and . _ : -"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.name);
    auto r = check_campaign_name(b.name);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == b.error);
  }
}

TEST_CASE("the compose check says whether a validated message composes, and why not") {
  TempDir dir;
  auto load = load_config(write_config(dir));
  REQUIRE(load.ok());
  auto check = ComposeCheck::create(load.config);
  REQUIRE(check.ok());
  Submission s{"customer-update",
               "a@example.com",
               {{"first_name", "Jane"}, {"headline", "Your plan"}, {"body", "Details"}},
               ""};
  auto m = validate_submission(*load.config, s);
  REQUIRE(m.ok());
  CHECK((*check)->check_composes(s, *m).ok());
  s.vars.erase("body");
  auto missing = (*check)->check_composes(s, *m);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message ==
        "template customer-update: variable 'body' is missing (used in text)");
}

TEST_CASE("with a compose check, a message that could not be sent is refused when it is queued") {
  TempDir dir;
  auto load = load_config(write_config(dir));
  REQUIRE(load.ok());
  auto check = ComposeCheck::create(load.config);
  REQUIRE(check.ok());
  const Vars good = {{"first_name", "Jane"}, {"headline", "Your plan"}, {"body", "Details"}};

  auto m = validate_submission(**check, {"customer-update", "Jane@Example.com", good, "nov"});
  REQUIRE_MESSAGE(m.ok(), m.error().message);
  CHECK(m->recipient == "jane@example.com");

  Vars long_subject = good;
  long_subject["headline"] = std::string(2000, 'x');
  Vars no_body = good;
  no_body.erase("body");
  struct Bad {
    Submission s;
    const char* reason;
  };
  const Bad bad[] = {
      {{"customer-update", "a@example.com", long_subject, ""},
       "vars: the message would not be sent: subject: Subject has a part longer than 998 octets"},
      {{"customer-update", "a@example.com", no_body, ""},
       "vars: the message would not be sent: template customer-update: variable 'body' is "
       "missing (used in text)"},
      {{"research-invitation", "a@example.com", good, ""},
       "vars: the message would not be sent: template research-invitation: variable"},
      // The field checks still come first, and name their field.
      {{"customer-update", "not-an-address", no_body, ""}, "to: the address has no '@'"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.reason);
    auto r = validate_submission(**check, b.s);
    REQUIRE_FALSE(r.ok());
    CHECK_MESSAGE(r.error().message.rfind(b.reason, 0) == 0, r.error().message);
  }
}

TEST_CASE("the compose check leaves DKIM out: it signs nothing and needs no key") {
  TempDir dir;
  auto path = write_config(dir, valid_config_yaml() + dkim_config_block(dir));
  auto load = load_config(path);
  REQUIRE_MESSAGE(load.ok(), load.errors.at(0).str());
  REQUIRE(load.config->dkim);
  auto check = ComposeCheck::create(load.config);
  REQUIRE(check.ok());
  CHECK((*check)->config().dkim);  // the config it answers with is the one given
  Submission s{"customer-update",
               "a@example.com",
               {{"first_name", "Jane"}, {"headline", "Your plan"}, {"body", "Details"}},
               ""};
  CHECK(validate_submission(**check, s).ok());
}
