#include "importer.h"

#include <doctest/doctest.h>

#include <sstream>

#include "sqlite_store.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {
struct Fixture {
  TempDir dir;
  std::shared_ptr<const Config> config;
  std::unique_ptr<SqliteStore> store;
  std::vector<std::pair<std::size_t, std::string>> rejects;
  ImportOptions opts;
  Fixture() {
    config = load_config(write_config(dir)).config;
    REQUIRE(config);
    store = std::make_unique<SqliteStore>(config->database.string());
    opts.batch_size = 2;  // several transactions even for a small file
    opts.on_reject = [this](std::size_t line, const std::string& why) {
      rejects.emplace_back(line, why);
    };
  }
  ImportSummary run(const std::string& text, ImportFormat f = ImportFormat::csv) {
    std::istringstream in(text);
    auto rows = RowReader::open(in, f);
    return import_messages(*rows, *config, "customer-update", "nov", *store, "import:test", opts);
  }
};
}  // namespace

TEST_CASE("good rows are queued, bad rows rejected with line and reason") {
  Fixture f;
  Suppression sup{"opted@example.com", "", SuppressionReason::unsubscribe, "test", 0};
  f.store->suppress({&sup, 1}, 1);
  auto s = f.run(
      "email,first_name\n"
      "a@example.com,Ann\n"
      "not-an-address,Bob\n"
      "opted@example.com,Ola\n"
      ",Nobody\n"
      "bro\"ken@example.com,x\n"
      "b@example.com,\"Bea\r\nBcc: x\"\n"
      "A@EXAMPLE.COM,Ann again\n");
  CHECK(s.queued == 1);
  CHECK(s.suppressed == 1);
  CHECK(s.already_queued == 1);  // A@EXAMPLE.COM is a@example.com
  CHECK(s.rejected == 4);
  REQUIRE(f.rejects.size() == 4);
  CHECK(f.rejects[0] == std::pair<std::size_t, std::string>{3, "to: the address has no '@'"});
  CHECK(f.rejects[1].first == 5);
  CHECK(f.rejects[1].second.find("no email") == 0);
  CHECK(f.rejects[2].first == 6);
  CHECK(f.rejects[2].second.find("malformed CSV") == 0);
  CHECK(f.rejects[3].first == 7);
  CHECK(f.rejects[3].second.find("line break") != std::string::npos);
}

TEST_CASE("re-running the same import is a no-op") {
  Fixture f;
  std::string csv = "email\na@example.com\nb@example.com\nc@example.com\n";
  CHECK(f.run(csv).queued == 3);
  auto again = f.run(csv);
  CHECK(again.queued == 0);
  CHECK(again.already_queued == 3);
  CHECK(f.store->counts(std::nullopt)[MessageState::queued] == 3);
}

TEST_CASE("a bad column name in a CSV header stops the import once") {
  Fixture f;
  auto s = f.run("email,First Name\na@example.com,Ann\nb@example.com,Bob\n");
  CHECK(s.fatal.find("column 'First Name'") != std::string::npos);
  CHECK(s.queued == 0);
  CHECK(f.rejects.empty());
}

TEST_CASE("JSON Lines import") {
  Fixture f;
  auto s = f.run(
      "{\"email\":\"a@example.com\",\"first_name\":\"Ann\",\"plan_mbps\":500}\n{\"first_name\":"
      "\"x\"}\n",
      ImportFormat::jsonl);
  CHECK(s.queued == 1);
  CHECK(s.rejected == 1);
  auto claimed = f.store->claim_due("t", 10, now_millis() + 1, now_millis() + 1000);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].vars_json == R"({"first_name":"Ann","plan_mbps":"500"})");
}

TEST_CASE("suppression import: scopes, reasons and bad rows") {
  Fixture f;
  std::istringstream in(
      "email,category,reason,source\n"
      "a@example.com,,unsubscribe,x\n"
      "b@example.com,research-invitation,,x\n"
      "c@example.com,newsletter,,x\n"
      "d@example.com,,bored,x\n"
      "a@example.com,,manual,x\n");
  auto rows = RowReader::open(in, ImportFormat::csv);
  auto s = import_suppressions(*rows, *f.config, *f.store, "import:test", f.opts);
  CHECK(s.queued == 2);
  CHECK(s.already_queued == 1);
  CHECK(s.rejected == 2);
  CHECK(f.store->find_suppression("a@example.com", "customer-update")->reason ==
        SuppressionReason::unsubscribe);
  CHECK(f.store->find_suppression("b@example.com", "research-invitation")->reason ==
        SuppressionReason::import);
  CHECK_FALSE(f.store->find_suppression("b@example.com", "customer-update"));
}
