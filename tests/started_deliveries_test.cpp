#include "store/started_deliveries.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("the deliveries a daemon had begun are what the next one reads, one per sender") {
  TempDir dir;
  auto db = dir.path() / "q.db";
  {
    auto first = StartedDeliveries::open(db, 3);
    REQUIRE(first);
    CHECK_FALSE((*first)->left_by_last_daemon());  // no file: not known
    (*first)->mark(0, 11);
    (*first)->mark(2, 7);
    (*first)->mark(0, 12);  // sender 0 moved on: only its latest counts
    struct stat st {};
    REQUIRE(::stat((*first)->path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }  // the daemon dies without a word
  auto second = StartedDeliveries::open(db, 2);
  REQUIRE(second);
  REQUIRE((*second)->left_by_last_daemon());
  CHECK(*(*second)->left_by_last_daemon() == std::vector<MessageId>{12, 7});
  // The file starts afresh for the daemon that read it.
  auto third = StartedDeliveries::open(db, 2);
  REQUIRE(third);
  REQUIRE((*third)->left_by_last_daemon());
  CHECK((*third)->left_by_last_daemon()->empty());
}
