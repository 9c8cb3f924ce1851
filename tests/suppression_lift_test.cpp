#include "intake/suppression_lift.h"

#include <doctest/doctest.h>

#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE_TEMPLATE("lifting: exact matches only, and a recipient's own choice only with consent", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  const Suppression added[] = {
      {"manual@example.com", "customer-update", SuppressionReason::manual, "test", 0},
      {"choice@example.com", "", SuppressionReason::unsubscribe, "one-click", 0},
      {"complained@example.com", "", SuppressionReason::complaint, "fbl", 0},
  };
  store->suppress(added, 1);

  // The all-mail suppression stops every category, but lifting a category one is not lifting it.
  CHECK(lift_suppression(*store, "choice@example.com", "customer-update", true, "t", 2).status ==
        LiftStatus::not_found);
  CHECK(lift_suppression(*store, "nobody@example.com", "", true, "t", 2).status ==
        LiftStatus::not_found);

  auto kept = lift_suppression(*store, "choice@example.com", "", false, "t", 2);
  CHECK(kept.status == LiftStatus::needs_consent);
  REQUIRE(kept.suppression);
  CHECK(needs_consent_message(*kept.suppression) ==
        "this suppression records the recipient's own unsubscribe: mailing them again needs "
        "their renewed consent; ");
  CHECK(store->find_suppression("choice@example.com", ""));
  CHECK(lift_suppression(*store, "complained@example.com", "", false, "t", 2).status ==
        LiftStatus::needs_consent);

  auto manual = lift_suppression(*store, "manual@example.com", "customer-update", false, "t", 3);
  CHECK(manual.status == LiftStatus::lifted);
  CHECK(manual.suppression->reason == SuppressionReason::manual);
  CHECK_FALSE(store->find_suppression("manual@example.com", "customer-update"));

  CHECK(lift_suppression(*store, "choice@example.com", "", true, "t", 4).status ==
        LiftStatus::lifted);
  CHECK_FALSE(store->find_suppression("choice@example.com", "customer-update"));
}

TEST_CASE("the reason list names every reason, in order") {
  CHECK(suppression_reason_list() ==
        "unsubscribe, hard-bounce, soft-bounce, complaint, manual, import");
  for (const char* r : {"unsubscribe", "hard-bounce", "complaint", "manual", "import"})
    CHECK(parse_suppression_reason(r));
}
