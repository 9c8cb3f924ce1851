// bulkmailctl and `bulkmaild --check` as real processes against a PostgreSQL database (the test
// server's, a schema of its own): the same commands, the same answers as on SQLite.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "process.h"
#include "store/postgres/pg_store.h"
#include "test_config.h"
#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}

struct PostgresCli {
  std::unique_ptr<TestDatabase> db = postgres_database();
  TempDir dir;
  std::string config = write_config(dir, replace(valid_config_yaml(), "database: queue.db\n",
                                                 "database: \"" + db->location() + "\"\n"));

  ProcessResult operator()(std::vector<std::string> args, const std::string& input = "") const {
    args.insert(args.begin(), {bin_dir() + "/bulkmailctl", "--config", config});
    return run_process(args, input);
  }
};

const std::vector<std::string> kVars = {"--var", "first_name=Jane",
                                        "--var", "headline=Your plan is changing",
                                        "--var", "body=Details inside."};

std::vector<std::string> enqueue(const std::string& to, const std::string& campaign = "") {
  std::vector<std::string> args = {"enqueue", "--category", "customer-update", "--to", to};
  if (!campaign.empty()) args.insert(args.end(), {"--campaign", campaign});
  args.insert(args.end(), kVars.begin(), kVars.end());
  return args;
}

}  // namespace

TEST_CASE("postgresql: bulkmaild --check creates the tables, bulkmailctl never does") {
  PostgresCli cli;
  auto r = cli({"status"});
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.err.find("bulkmaild --check") != std::string::npos, r.err);
  r = run_process({bin_dir() + "/bulkmaild", "--check", "--config", cli.config});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  // This build's version, whichever it is.
  std::string version = std::to_string(PostgresStore::schema_version());
  CHECK(r.out.find("is at schema version " + version) != std::string::npos);
  CHECK(cli.db->scalar("SELECT version FROM schema_version") == version);
  r = run_process({bin_dir() + "/bulkmaild", "--check", "--config", cli.config});
  CHECK_MESSAGE(r.status == 0, r.err);  // again: nothing to do
}

TEST_CASE("postgresql: enqueue, import, suppress, history, campaigns and status") {
  PostgresCli cli;
  auto r = run_process({bin_dir() + "/bulkmaild", "--check", "--config", cli.config});
  REQUIRE_MESSAGE(r.status == 0, r.err);

  r = cli(enqueue("Jane@Example.com"));
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "1\n");
  r = cli({"import", "--category", "customer-update", "--campaign", "nov", "-"},
          "email,first_name,headline,body\npat@example.com,Pat,Your plan,Details\n"
          "not-an-address,Bo,Your plan,Details\nsam@example.com,Sam,Your plan,Details\n");
  CHECK(r.status == 1);  // one bad row, named; the good ones queued
  CHECK(r.out == "campaign nov: queued 2, already queued 0, suppressed 0, rejected 1\n");
  CHECK_MESSAGE(r.err.find("line 3: rejected: to: the address has no '@'") != std::string::npos,
                r.err);
  r = cli({"suppress", "add", "sam@example.com", "--reason", "manual"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  r = cli({"suppress", "list"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("sam@example.com") != std::string::npos);
  r = cli(enqueue("sam@example.com", "later"));
  REQUIRE_MESSAGE(r.status == 0, r.err);

  r = cli({"status", "--json"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  auto status = nlohmann::json::parse(r.out);
  CHECK(status["queued"] == 3);      // jane, pat, sam (queued before the suppression)
  CHECK(status["suppressed"] == 1);  // sam's second message, stored suppressed

  r = cli({"history", "jane@example.com"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("enqueued") != std::string::npos);
  r = cli({"campaigns"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("nov") != std::string::npos);
  r = cli({"cancel", "--campaign", "nov"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "cancelled 2\n");
  r = cli({"status", "--json", "--campaign", "nov"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(nlohmann::json::parse(r.out)["cancelled"] == 2);
}

TEST_CASE("postgresql: a database that cannot be reached is named, the run fails cleanly") {
  TempDir dir;
  std::string config = write_config(
      dir, replace(valid_config_yaml(), "database: queue.db\n",
                   "database: \"postgresql://bulkmail@127.0.0.1:1/bulkmail?connect_timeout=5\"\n"));
  auto r = run_process({bin_dir() + "/bulkmaild", "--check", "--config", config});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("cannot connect to PostgreSQL") != std::string::npos, r.err);
  r = run_process({bin_dir() + "/bulkmailctl", "--config", config, "status"});
  CHECK(r.status != 0);
  CHECK_MESSAGE(r.err.find("postgresql://bulkmail@127.0.0.1:1/bulkmail") != std::string::npos,
                r.err);
}

TEST_CASE("postgresql: store copy moves a SQLite queue up: status, suppress list, history agree") {
  TempDir dir;
  std::string sqlite_config = write_config(dir);
  auto sqlite = [&](std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {bin_dir() + "/bulkmailctl", "--config", sqlite_config});
    return run_process(args, input);
  };
  auto r = run_process({bin_dir() + "/bulkmaild", "--check", "--config", sqlite_config});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  REQUIRE(sqlite(enqueue("jane@example.com")).status == 0);
  r = sqlite({"import", "--category", "customer-update", "--campaign", "nov", "-"},
             "email,first_name,headline,body\npat@example.com,Pat,Your plan,Details\n"
             "sam@example.com,Sam,Your plan,Details\nlee@example.com,Lee,Your plan,Details\n");
  REQUIRE_MESSAGE(r.status == 0, r.err);
  REQUIRE(sqlite({"suppress", "add", "sam@example.com", "--reason", "unsubscribe"}).status == 0);
  REQUIRE(
      sqlite({"suppress", "add", "gone@example.com", "--category", "research-invitation"}).status ==
      0);
  REQUIRE(sqlite({"pause", "--campaign", "nov"}).status == 0);
  // Lee opts out, then asks to be forgotten: the suppression stays, under a salted hash that must
  // still match after the copy.
  REQUIRE(sqlite({"suppress", "add", "lee@example.com", "--reason", "unsubscribe"}).status == 0);
  REQUIRE(sqlite({"forget", "lee@example.com"}).status == 0);

  PostgresCli pg;
  std::string sqlite_file = (dir / "queue.db").string();
  r = run_process({bin_dir() + "/bulkmailctl", "store", "copy", "--from", sqlite_file, "--to",
                   pg.db->location()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("messages: 3\n") != std::string::npos);
  CHECK(r.out.find("the counts match") != std::string::npos);

  for (std::vector<std::string> args : {std::vector<std::string>{"status"},
                                        {"status", "--json"},
                                        {"status", "--campaign", "nov"},
                                        {"campaigns"},
                                        {"suppress", "list"},
                                        {"history", "jane@example.com"},
                                        {"history", "sam@example.com"},
                                        {"history", "lee@example.com"}}) {
    std::string what;
    for (const auto& a : args) what += a + " ";
    CAPTURE(what);
    auto a = sqlite(args);
    auto b = pg(args);
    CHECK(a.status == b.status);
    CHECK(a.out == b.out);
  }
  // A second copy into the same database is refused, and changes nothing there.
  r = run_process({bin_dir() + "/bulkmailctl", "store", "copy", "--from", sqlite_file, "--to",
                   pg.db->location()});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("not empty") != std::string::npos, r.err);
  CHECK(pg.db->scalar("SELECT count(*) FROM messages") == "3");
  // Lee, forgotten on SQLite, is still suppressed on PostgreSQL: an enqueue stores nothing.
  r = pg(enqueue("lee@example.com"));
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK_MESSAGE(r.err.find("asked to be forgotten and is suppressed") != std::string::npos, r.err);
  CHECK(pg.db->scalar("SELECT count(*) FROM messages") == "3");
  // What is not a PostgreSQL URI, or holds a password, is refused before anything is read.
  r = run_process(
      {bin_dir() + "/bulkmailctl", "store", "copy", "--from", sqlite_file, "--to", "other.db"});
  CHECK(r.status == 2);
  r = run_process({bin_dir() + "/bulkmailctl", "store", "copy", "--from", sqlite_file, "--to",
                   "postgresql://u:hunter2@127.0.0.1/db"});
  CHECK(r.status == 1);
  CHECK(r.err.find("hunter2") == std::string::npos);
}
