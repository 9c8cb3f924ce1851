#include "intake/importer.h"

#include <doctest/doctest.h>

#include <sstream>

#include "file_size_limit.h"
#include "store/sqlite/sqlite_store.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {
struct Fixture {
  TempDir dir;
  std::shared_ptr<const Config> config;
  std::unique_ptr<ComposeCheck> check;
  std::unique_ptr<SqliteStore> store;
  std::vector<std::pair<std::size_t, std::string>> rejects;
  ImportOptions opts;
  Fixture() {
    config = load_config(write_config(dir)).config;
    REQUIRE(config);
    auto c = ComposeCheck::create(config);
    REQUIRE(c);
    check = std::move(c.value());
    store = std::make_unique<SqliteStore>(config->database.sqlite.string());
    opts.batch_size = 2;  // several transactions even for a small file
    opts.on_reject = [this](std::size_t line, const std::string& why) {
      rejects.emplace_back(line, why);
    };
  }
  ImportSummary run(const std::string& text, ImportFormat f = ImportFormat::csv) {
    std::istringstream in(text);
    auto rows = RowReader::open(in, f);
    return import_messages(*rows, *check, "customer-update", "nov", *store, "import:test", opts);
  }
};

// A CSV file of customer updates: each row is an email and first_name, followed here by the
// headline and body the template also uses.
std::string update_csv(const std::vector<std::string>& rows) {
  std::string text = "email,first_name,headline,body\n";
  for (const auto& row : rows) text += row + ",Your plan,Details\n";
  return text;
}
}  // namespace

TEST_CASE("good rows are queued, bad rows rejected with line and reason") {
  Fixture f;
  Suppression sup{"opted@example.com", "", SuppressionReason::unsubscribe, "test", 0};
  f.store->suppress({&sup, 1}, 1);
  auto s = f.run(update_csv({"a@example.com,Ann", "not-an-address,Bob", "opted@example.com,Ola",
                             ",Nobody", "bro\"ken@example.com,x", "b@example.com,\"Bea\r\nBcc: x\"",
                             "A@EXAMPLE.COM,Ann again"}));
  // b@'s first name has a line break: it reaches only the body, where that is a new line.
  CHECK(s.queued == 2);
  CHECK(s.suppressed == 1);
  CHECK(s.already_queued == 1);  // A@EXAMPLE.COM is a@example.com
  CHECK(s.rejected == 3);
  REQUIRE(f.rejects.size() == 3);
  CHECK(f.rejects[0] == std::pair<std::size_t, std::string>{3, "to: the address has no '@'"});
  CHECK(f.rejects[1].first == 5);
  CHECK(f.rejects[1].second.find("no email") == 0);
  CHECK(f.rejects[2].first == 6);
  CHECK(f.rejects[2].second.find("malformed CSV") == 0);
}

TEST_CASE("a row whose value would break the subject onto two lines is rejected, naming it") {
  Fixture f;
  auto s = f.run(
      "email,first_name,headline,body\n"
      "a@example.com,Ann,\"Your plan\r\nBcc: victim@example.org\",Details\n"
      "b@example.com,Bob,Your plan,\"Two\n\nparagraphs\"\n");
  CHECK(s.queued == 1);
  REQUIRE(s.rejected == 1);
  CHECK(f.rejects[0].first == 2);
  CHECK(f.rejects[0].second.find("variable 'headline' holds a line break") != std::string::npos);
}

TEST_CASE("re-running the same import is a no-op") {
  Fixture f;
  std::string csv = update_csv({"a@example.com,Ann", "b@example.com,Bob", "c@example.com,Cy"});
  CHECK(f.run(csv).queued == 3);
  auto again = f.run(csv);
  CHECK(again.queued == 0);
  CHECK(again.already_queued == 3);
  CHECK(f.store->counts(std::nullopt)[MessageState::queued] == 3);
}

TEST_CASE("an import the disk cannot hold stops at the batch that failed, rolled back, named") {
  Fixture f;
  f.opts.batch_size = 50;
  std::vector<std::string> rows;
  for (int i = 0; i < 2000; ++i) rows.push_back("p" + std::to_string(i) + "@example.com,Pat");
  std::string csv = update_csv(rows);
  std::string db = f.config->database.sqlite.string();
  auto size = [&](const std::string& p) {
    std::error_code ec;
    auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
  };
  ImportSummary cut;
  {
    // Room for some batches, not all 40: the disk fills mid-import.
    FileSizeLimit full(std::max(size(db), size(db + "-wal")) + 96 * 1024);
    cut = f.run(csv);
  }
  INFO(cut.fatal);
  REQUIRE_FALSE(cut.fatal.empty());
  CHECK(cut.queued > 0);
  CHECK(cut.queued < 2000);
  CHECK(cut.queued % 50 == 0);  // whole batches only
  // The failed batch is named by its lines (the header is line 1), with SQLite's reason.
  std::size_t first = static_cast<std::size_t>(cut.queued) + 2;
  CHECK(cut.fatal.find("lines " + std::to_string(first) + "-" + std::to_string(first + 49) +
                       ": the database could not record them (") == 0);
  CHECK(cut.fatal.find("rolled back") != std::string::npos);
  // Nothing half: what the summary says was queued is exactly what the queue holds.
  CHECK(f.store->counts(std::nullopt)[MessageState::queued] == cut.queued);
  // Space is back: the same import again adds the rest, and nobody twice.
  auto rest = f.run(csv);
  CHECK(rest.fatal.empty());
  CHECK(rest.queued == 2000 - cut.queued);
  CHECK(rest.already_queued == cut.queued);
  CHECK(f.store->counts(std::nullopt)[MessageState::queued] == 2000);
}

TEST_CASE("a dry run checks every row and reports, queuing nothing") {
  Fixture f;
  Suppression sup{"opted@example.com", "", SuppressionReason::unsubscribe, "test", 0};
  f.store->suppress({&sup, 1}, 1);
  f.opts.dry_run = true;
  auto s = f.run(update_csv({"a@example.com,Ann", "not-an-address,Bob", "opted@example.com,Ola"}));
  CHECK(s.queued == 1);
  CHECK(s.suppressed == 1);
  CHECK(s.rejected == 1);
  REQUIRE(f.rejects.size() == 1);
  CHECK(f.rejects[0].first == 3);
  auto c = f.store->counts(std::nullopt);
  for (MessageState st : kAllMessageStates) CHECK(c[st] == 0);
}

TEST_CASE("a corrected file replaces the variables of messages not sent yet, with --update") {
  Fixture f;
  CHECK(f.run(update_csv({"a@example.com,Ann", "b@example.com,Bob", "c@example.com,Cy"})).queued ==
        3);
  // b's message went out, c's failed; a's waits.
  auto claimed = f.store->claim_due("test", 10, now_millis(), now_millis() + 60'000);
  REQUIRE(claimed.size() == 3);
  std::vector<Outcome> outcomes;
  for (const auto& m : claimed) {
    if (m.recipient == "b@example.com")
      outcomes.push_back({m.id, MessageState::sent, 250, "Ok", 0, "", BounceClass::unknown});
    if (m.recipient == "c@example.com")
      outcomes.push_back({m.id, MessageState::failed, 554, "no", 0, "", BounceClass::unknown});
    if (m.recipient == "a@example.com")
      outcomes.push_back({m.id, MessageState::queued, 0, "back", 0, "", BounceClass::unknown});
  }
  f.store->record_outcomes(outcomes, now_millis());
  std::string fixed =
      "email,first_name,headline,body\n"
      "a@example.com,Ann,Fixed headline,Fixed body\n"
      "b@example.com,Bob,Fixed headline,Fixed body\n"
      "c@example.com,Cy,Fixed headline,Fixed body\n"
      "d@example.com,Di,Fixed headline,Fixed body\n";
  // Without --update, a re-import changes nothing for those already held.
  auto plain = f.run(fixed);
  CHECK(plain.queued == 1);  // d is new
  CHECK(plain.already_queued == 3);
  f.opts.update = true;
  auto s = f.run(fixed);
  CHECK(s.updated == 3);         // a (queued), c (failed), d (queued by the plain run)
  CHECK(s.already_queued == 1);  // b was sent: left as it was
  auto next = f.store->claim_due("test", 10, now_millis(), now_millis() + 60'000);
  for (const auto& m : next) CHECK(m.vars_json.find("Fixed headline") != std::string::npos);
  auto h = f.store->history("c@example.com");
  CHECK(h.back().type == "vars-updated");
  CHECK(f.store->history("b@example.com").back().type == "sent");
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
      "{\"email\":\"a@example.com\",\"first_name\":\"Ann\",\"headline\":\"H\",\"body\":\"B\","
      "\"plan_mbps\":500}\n{\"first_name\":\"x\"}\n",
      ImportFormat::jsonl);
  CHECK(s.queued == 1);
  CHECK(s.rejected == 1);
  auto claimed = f.store->claim_due("t", 10, now_millis() + 1, now_millis() + 1000);
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].vars_json ==
        R"({"body":"B","first_name":"Ann","headline":"H","plan_mbps":"500"})");
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

TEST_CASE("a row whose message could not be sent is rejected, as preview refuses it") {
  Fixture f;
  std::string csv =
      "email,first_name,headline,body\n"
      "a@example.com,Ann,Hi,Details\n";
  csv += "b@example.com,Bob," + std::string(2000, 'x') + ",Details\n";  // a 2,000-octet subject
  csv += "c@example.com,Cy,,Details\n";                                 // an empty subject
  csv += "d@example.com,Dee,Hi,Details\n";
  auto s = f.run(csv);
  CHECK(s.queued == 2);
  CHECK(s.rejected == 2);
  REQUIRE(f.rejects.size() == 2);
  CHECK(f.rejects[0].first == 3);
  CHECK(f.rejects[0].second ==
        "vars: the message would not be sent: subject: Subject has a part longer than 998 octets");
  CHECK(f.rejects[1].first == 4);
  CHECK(f.rejects[1].second ==
        "vars: the message would not be sent: template customer-update: the subject renders "
        "empty");
}

TEST_CASE("a CSV whose columns cannot fill the template is refused once, not row by row") {
  Fixture f;
  auto s = f.run("email,first_name,headline\na@example.com,Ann,Hi\nb@example.com,Bob,Hi\n");
  CHECK(s.fatal ==
        "no row can be queued: template customer-update: variable 'body' is missing (used in "
        "text)");
  CHECK(s.queued == 0);
  CHECK(f.rejects.empty());
  CHECK(f.store->counts(std::nullopt)[MessageState::queued] == 0);
}

TEST_CASE("JSON Lines: rows missing a template variable or naming a key twice are rejected") {
  Fixture f;
  std::string jsonl = R"({"email":"a@example.com","first_name":"Ann","headline":"H"})"
                      "\n";
  jsonl += R"({"email":"b@example.com","email":"c@example.com",)"
           R"("first_name":"B","headline":"H","body":"B"})"
           "\n";
  jsonl += R"({"email":"d@example.com","first_name":"D","headline":"H","body":"B"})"
           "\n";
  auto s = f.run(jsonl, ImportFormat::jsonl);
  CHECK(s.queued == 1);
  CHECK(s.rejected == 2);
  REQUIRE(f.rejects.size() == 2);
  CHECK(f.rejects[0].first == 1);
  CHECK(f.rejects[0].second.find("variable 'body' is missing") != std::string::npos);
  CHECK(f.rejects[1] == std::pair<std::size_t, std::string>{
                            2, "key 'email' is given twice (a row names each key once)"});
}

TEST_CASE("the counts add up to the rows of a file with an unclosed quote") {
  Fixture f;
  f.opts.batch_size = 500;
  std::vector<std::string> rows;
  for (int i = 0; i < 2000; ++i) {
    std::string n = std::to_string(i);
    rows.push_back("user" + n + "@example.com," + (i == 1 ? "\"Pat" : "Pat"));  // line 3: no "
  }
  auto s = f.run(update_csv(rows));
  CHECK(s.fatal.empty());
  CHECK(s.queued == 1999);
  CHECK(s.rejected == 1);
  CHECK(s.queued + s.already_queued + s.suppressed + s.rejected == 2000);
  REQUIRE(f.rejects.size() == 1);
  CHECK(f.rejects[0].first == 3);
  CHECK(
      f.rejects[0].second ==
      "malformed CSV: a quoted field opened on line 3 is never closed; reading resumes on line 4");
}

TEST_CASE("an empty CSV stops an import of messages or suppressions as fatal") {
  Fixture f;
  CHECK(f.run("").fatal.find("line 1: the file is empty") == 0);
  std::istringstream in("");
  auto rows = RowReader::open(in, ImportFormat::csv);
  auto s = import_suppressions(*rows, *f.config, *f.store, "import:test", f.opts);
  CHECK(s.fatal.find("line 1: the file is empty") == 0);
}

TEST_CASE("a row becomes a submission: the email column its recipient, the others its variables") {
  Row row;
  row.line = 2;
  row.fields = {{"first_name", "Ann"}, {"email", "a@example.com"}, {"plan", "Fiber"}};
  auto s = submission_from_row(row, "customer-update", "nov");
  REQUIRE(s.ok());
  CHECK(s->category == "customer-update");
  CHECK(s->campaign == "nov");
  CHECK(s->to == "a@example.com");
  CHECK(s->vars == Vars{{"first_name", "Ann"}, {"plan", "Fiber"}});

  row.fields = {{"first_name", "Ann"}};  // no email: the caller rejects the row
  auto none = submission_from_row(row, "customer-update", "");
  REQUIRE(none.ok());
  CHECK(none->to.empty());

  struct Bad {
    std::vector<std::pair<std::string, std::string>> fields;
    const char* error;
  };
  const Bad bad[] = {
      {{{"email", "a@example.com"}, {"First Name", "Ann"}, {"1x", "y"}},
       "column 'First Name': variable name 'First Name' may hold only letters, digits, '_' and "
       "'-'"},
      {{{"organization", "Someone Else"}, {"email", "a@example.com"}},
       "column 'organization': variable 'organization' is filled in by bulkmail and cannot be "
       "set"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.error);
    row.fields = b.fields;
    auto r = submission_from_row(row, "customer-update", "");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == b.error);
  }
}

TEST_CASE("JSON Lines: a key that cannot name a variable rejects its row, not the file") {
  Fixture f;
  std::string jsonl = R"({"email":"a@example.com","first name":"Ann","headline":"H","body":"B"})"
                      "\n";
  jsonl += R"({"email":"b@example.com","first_name":"Bo","headline":"H","body":"B"})"
           "\n";
  auto s = f.run(jsonl, ImportFormat::jsonl);
  CHECK(s.fatal.empty());
  CHECK(s.queued == 1);
  CHECK(s.rejected == 1);
  REQUIRE(f.rejects.size() == 1);
  CHECK(f.rejects[0].first == 1);
  CHECK(f.rejects[0].second.find("column 'first name': ") == 0);
}
