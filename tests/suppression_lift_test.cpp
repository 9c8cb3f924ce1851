#include "intake/suppression_lift.h"

#include <doctest/doctest.h>

#include "store/sqlite/sqlite_store.h"
#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("lifting: exact matches only, and a recipient's own choice only with consent") {
  TempDir dir;
  SqliteStore s((dir / "q.db").string());
  const Suppression added[] = {
      {"manual@example.com", "customer-update", SuppressionReason::manual, "test", 0},
      {"choice@example.com", "", SuppressionReason::unsubscribe, "one-click", 0},
      {"complained@example.com", "", SuppressionReason::complaint, "fbl", 0},
  };
  s.suppress(added, 1);

  // The all-mail suppression stops every category, but lifting a category one is not lifting it.
  CHECK(lift_suppression(s, "choice@example.com", "customer-update", true, "t", 2).status ==
        LiftStatus::not_found);
  CHECK(lift_suppression(s, "nobody@example.com", "", true, "t", 2).status ==
        LiftStatus::not_found);

  auto kept = lift_suppression(s, "choice@example.com", "", false, "t", 2);
  CHECK(kept.status == LiftStatus::needs_consent);
  REQUIRE(kept.suppression);
  CHECK(needs_consent_message(*kept.suppression) ==
        "this suppression records the recipient's own unsubscribe: mailing them again needs "
        "their renewed consent; ");
  CHECK(s.find_suppression("choice@example.com", ""));
  CHECK(lift_suppression(s, "complained@example.com", "", false, "t", 2).status ==
        LiftStatus::needs_consent);

  auto manual = lift_suppression(s, "manual@example.com", "customer-update", false, "t", 3);
  CHECK(manual.status == LiftStatus::lifted);
  CHECK(manual.suppression->reason == SuppressionReason::manual);
  CHECK_FALSE(s.find_suppression("manual@example.com", "customer-update"));

  CHECK(lift_suppression(s, "choice@example.com", "", true, "t", 4).status == LiftStatus::lifted);
  CHECK_FALSE(s.find_suppression("choice@example.com", "customer-update"));
}

TEST_CASE("the reason list names every reason, in order") {
  CHECK(suppression_reason_list() ==
        "unsubscribe, hard-bounce, soft-bounce, complaint, manual, import");
  for (const char* r : {"unsubscribe", "hard-bounce", "complaint", "manual", "import"})
    CHECK(parse_suppression_reason(r));
}
