// bulkmailctl run as a real process against a temporary database.
#include <SQLiteCpp/Database.h>
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "crypto/digest.h"
#include "crypto/unsubscribe_token.h"
#include "crypto/verp_token.h"
#include "process.h"
#include "sent_queue.h"
#include "store/instance_lock.h"
#include "store/sqlite/sqlite_store.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

struct Cli {
  TempDir dir;
  std::string config = write_config(dir);

  // As the README's first step: bulkmaild --check creates the database, bulkmailctl never does.
  Cli() {
    auto r = run_process({bin_dir() + "/bulkmaild", "--check", "--config", config});
    REQUIRE_MESSAGE(r.status == 0, r.err);
  }

  ProcessResult operator()(std::vector<std::string> args, const std::string& input = "") const {
    args.insert(args.begin(), {bin_dir() + "/bulkmailctl", "--config", config});
    return run_process(args, input);
  }
  nlohmann::json status(const std::string& campaign = "") const {
    auto r = campaign.empty() ? (*this)({"status", "--json"})
                              : (*this)({"status", "--json", "--campaign", campaign});
    REQUIRE_MESSAGE(r.status == 0, r.err);
    return nlohmann::json::parse(r.out);
  }
};

// `args` with --var for every variable the category's template uses.
std::vector<std::string> with_vars(std::vector<std::string> args) {
  bool research = std::find(args.begin(), args.end(), "research-invitation") != args.end();
  const std::vector<std::string> vars =
      research ? std::vector<std::string>{"first_name=Ann",
                                          "study_name=the Wi-Fi Study",
                                          "duration_minutes=20",
                                          "study_format=a survey",
                                          "incentive=a $25 credit",
                                          "study_url=https://research.example.com/s/1",
                                          "closes_on=December 15"}
               : std::vector<std::string>{"first_name=Jane", "headline=Your plan is changing",
                                          "body=Details inside."};
  for (const auto& v : vars) args.insert(args.end(), {"--var", v});
  return args;
}

// The customer-update template's columns, and values for them after a row's email.
const std::string kUpdateColumns = "email,first_name,headline,body";
const std::string kUpdateValues = ",Pat,Your plan,Details";

}  // namespace

TEST_CASE("enqueue prints the new id - bad input is refused with a reason and exit 1") {
  Cli cli;
  auto r = cli(with_vars({"enqueue", "--category", "customer-update", "--to", "Jane@Example.com"}));
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "1\n");
  r = cli(with_vars({"enqueue", "--category", "customer-update", "--to", "jane@example.com"}));
  CHECK(r.out == "2\n");

  struct Bad {
    std::vector<std::string> args;
    int status;
    const char* reason;
  };
  const Bad bad[] = {
      {{"enqueue", "--category", "customer-update", "--to", "jane@@example.com"},
       1,
       "to: the address has more than one '@'"},
      {{"enqueue", "--category", "newsletter", "--to", "a@example.com"},
       1,
       "unknown category 'newsletter'"},
      {{"enqueue", "--category", "customer-update", "--to", "a@example.com", "--var",
        "headline=Hi\r\nBcc: v@example.org"},
       1,
       "line break"},
      {{"enqueue", "--category", "customer-update", "--to", "a@example.com", "--var",
        "postal_address=PO Box 1"},
       1,
       "filled in by bulkmail"},
      {{"enqueue", "--category", "customer-update"}, 2, "--to is required"},
      {{"frobnicate"}, 2, ""},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.args);
    auto res = cli(b.args);
    CHECK(res.status == b.status);
    CHECK_MESSAGE(res.err.find(b.reason) != std::string::npos, res.err);
    CHECK(res.out.empty());
  }
  CHECK(cli.status()["queued"] == 2);
}

TEST_CASE("an invalid config exits 3 and names the problem") {
  Cli cli;
  cli.dir.write("bulkmail.yaml", "database: q.db\n");
  auto r = cli({"status"});
  CHECK(r.status == 3);
  CHECK(r.err.find("sender: is required") != std::string::npos);
}

TEST_CASE(
    "enqueue to a suppressed address stores it as suppressed - a campaign holds an address once") {
  Cli cli;
  REQUIRE(cli({"suppress", "add", "Opted@Example.com", "--reason", "unsubscribe"}).status == 0);
  auto r =
      cli(with_vars({"enqueue", "--category", "research-invitation", "--to", "opted@example.com"}));
  CHECK(r.status == 0);
  CHECK(r.err.find("suppressed (unsubscribe, all mail)") != std::string::npos);
  CHECK(cli.status()["suppressed"] == 1);

  REQUIRE(cli(with_vars({"enqueue", "--category", "customer-update", "--to", "a@example.com",
                         "--campaign", "nov"}))
              .status == 0);
  r = cli(with_vars(
      {"enqueue", "--category", "customer-update", "--to", "A@example.com", "--campaign", "nov"}));
  CHECK(r.status == 0);
  CHECK(r.out.empty());
  CHECK(r.err.find("already holds this recipient") != std::string::npos);
  CHECK(cli.status("nov")["queued"] == 1);
}

TEST_CASE("status --json has a number for every state, and what the daemon is doing") {
  Cli cli;
  auto j = cli.status();
  for (const char* k : {"queued", "sending", "deferred", "sent", "bounced", "complained", "failed",
                        "suppressed", "cancelled"}) {
    CAPTURE(k);
    REQUIRE(j.contains(k));
    CHECK(j[k].is_number_integer());
    CHECK(j[k] == 0);
  }
  CHECK(j.size() == 10);
  CHECK(j["dispatch"]["state"] == "not running");
  // What a daemon that is paused for its daily limit has written, while it holds the lock.
  auto db = (cli.dir.path() / "queue.db").string();
  SqliteStore(db).set_dispatch_state(
      {"paused", "daily limit reached: 2 of 2 sent today, resumes at 00:00 UTC", 1'700'000'000'000,
       ""});
  {
    auto lock = InstanceLock::acquire(db);
    REQUIRE(lock);
    j = cli.status();
    CHECK(j["dispatch"]["state"] == "paused");
    CHECK(j["dispatch"]["detail"] ==
          "daily limit reached: 2 of 2 sent today, resumes at 00:00 UTC");
    auto text = cli({"status"});
    CHECK(text.out.find("dispatch: paused (daily limit reached: 2 of 2 sent today") !=
          std::string::npos);
  }
  j = cli.status();
  CHECK(j["dispatch"]["state"] == "not running");
  CHECK(j["dispatch"]["last_state"] == "paused");
  auto text = cli({"status"});
  CHECK(text.out.find("queued      0\n") == 0);
}

TEST_CASE("import: quoted fields, CRLF, BOM - rejected rows on stderr - a re-run is a no-op") {
  Cli cli;
  auto file = cli.dir.write("november.csv",
                            "\xEF\xBB\xBF"
                            "email,first_name,headline,body\r\n"
                            "ann@example.com,Ann,\"Faster fiber, same price\",b\r\n"
                            "bad-address,Bob,x,b\r\n"
                            "\"cy@example.com\",\"Cy \"\"The Guy\"\"\",x,\"two\r\nlines\"\r\n"
                            "dee@example.com,Dee\r\n"
                            "eve@example.com,Eve,ok,b\r\n");
  auto r = cli({"import", "--category", "customer-update", file.string()});
  CHECK(r.status == 1);
  // Cy's body has two lines inside its quotes: a body may (only a subject may not).
  CHECK(r.out == "campaign november: queued 3, already queued 0, suppressed 0, rejected 2\n");
  CHECK(r.err.find("line 3: rejected: to: the address has no '@'") != std::string::npos);
  CHECK(
      r.err.find("line 6: rejected: malformed CSV: expected 4 fields as in the header, found 2") !=
      std::string::npos);
  CHECK(r.err.find("bad-address") == std::string::npos);  // the reason, never the address

  r = cli({"import", "--category", "customer-update", file.string()});
  CHECK(r.out == "campaign november: queued 0, already queued 3, suppressed 0, rejected 2\n");
  CHECK(cli.status()["queued"] == 3);
}

TEST_CASE("import refuses a campaign name, given or taken from the file, that cannot name one") {
  Cli cli;
  std::string csv = kUpdateColumns + "\na@example.com" + kUpdateValues + "\n";
  auto r = cli({"import", "--category", "customer-update", "--campaign", "nov 2026", "-"}, csv);
  CHECK(r.status == 1);
  CHECK(r.err == "bulkmailctl: --campaign may hold only letters, digits and . _ : -\n");
  auto spaced = cli.dir.write("my list.csv", csv);
  r = cli({"import", "--category", "customer-update", spaced.string()});
  CHECK(r.status == 1);
  CHECK(r.err ==
        "bulkmailctl: the file name 'my list' cannot name the campaign: give --campaign NAME\n");
  auto named = cli.dir.write("nov-2026.csv", csv);
  r = cli({"import", "--category", "customer-update", named.string()});
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "campaign nov-2026: queued 1, already queued 0, suppressed 0, rejected 0\n");
}

TEST_CASE("import of a clean file exits 0 - stdin needs --campaign - JSON Lines by extension") {
  Cli cli;
  std::string csv = kUpdateColumns + "\na@example.com" + kUpdateValues + "\n";
  auto r = cli({"import", "--category", "customer-update", "-"}, csv);
  CHECK(r.status == 1);
  CHECK(r.err.find("needs --campaign") != std::string::npos);
  r = cli({"import", "--category", "customer-update", "--campaign", "update-1", "-"}, csv);
  CHECK_MESSAGE(r.status == 0, r.err);
  auto jsonl = cli.dir.write("panel.jsonl",
                             R"({"email":"b@example.com","first_name":"Bo","study_name":"Wi-Fi",)"
                             R"("duration_minutes":20,"study_format":"a survey","incentive":"$25",)"
                             R"("study_url":"https://r.example.com/1","closes_on":"May 1"})"
                             "\n");
  r = cli({"import", "--category", "research-invitation", jsonl.string()});
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "campaign panel: queued 1, already queued 0, suppressed 0, rejected 0\n");
  r = cli({"import", "--category", "research-invitation", (cli.dir / "missing.csv").string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("cannot read") != std::string::npos);
}

TEST_CASE("suppression management: add, scopes, list, remove with consent, export, import") {
  Cli cli;
  CHECK(cli({"suppress", "add", "a@example.com", "--category", "research-invitation", "--reason",
             "unsubscribe"})
            .out == "suppressed for research-invitation\n");
  CHECK(cli({"suppress", "add", "a@example.com", "--category", "research-invitation"}).out ==
        "already suppressed for research-invitation\n");
  CHECK(cli({"suppress", "add", "b@example.com"}).status == 0);
  CHECK(cli({"suppress", "add", "c@example.com", "--reason", "bored"}).status == 2);  // usage
  CHECK(cli({"suppress", "add", "c@example.com", "--category", "nope"}).status == 1);

  auto list = nlohmann::json::parse(cli({"suppress", "list", "--json"}).out);
  REQUIRE(list.size() == 2);
  CHECK(list[0]["email"] == "a@example.com");
  CHECK(list[0]["category"] == "research-invitation");
  CHECK(list[1]["category"].is_null());

  auto r = cli({"suppress", "remove", "a@example.com", "--category", "research-invitation"});
  CHECK(r.status == 1);
  CHECK(r.err.find("renewed consent") != std::string::npos);
  CHECK(cli({"suppress", "remove", "a@example.com", "--category", "research-invitation", "--force"})
            .status == 0);
  CHECK(cli({"suppress", "remove", "b@example.com"}).status == 0);
  CHECK(cli({"suppress", "remove", "b@example.com"}).status == 1);

  cli({"suppress", "add", "Partner.Match@Example.com", "--reason", "complaint"});
  auto plain = cli({"suppress", "export"}).out;
  CHECK(plain.find(
            "email,category,reason,source,created_at\npartner.match@example.com,,complaint,cli,") ==
        0);
  auto hashed = cli({"suppress", "export", "--hashed", "sha256"}).out;
  CHECK(hashed.find("email_sha256,category,reason,source,created_at\n" +
                    sha256_hex("partner.match@example.com") + ",,complaint,") == 0);
  CHECK(hashed.find("partner.match") == std::string::npos);

  // An export imports back into another database unchanged.
  Cli other;
  auto file = other.dir.write("export.csv", plain);
  r = other({"suppress", "import", file.string()});
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "suppressed 1, already suppressed 0, rejected 0\n");
  CHECK(other({"suppress", "export"})
            .out.find("partner.match@example.com,,complaint,import:export.csv") !=
        std::string::npos);
}

TEST_CASE("history shows every event for an address, oldest first") {
  Cli cli;
  cli(with_vars(
      {"enqueue", "--category", "customer-update", "--to", "h@example.com", "--campaign", "c1"}));
  cli({"suppress", "add", "h@example.com", "--reason", "unsubscribe"});
  cli(with_vars(
      {"enqueue", "--category", "customer-update", "--to", "h@example.com", "--campaign", "c2"}));
  auto j = nlohmann::json::parse(cli({"history", "H@example.com", "--json"}).out);
  REQUIRE(j.size() == 3);
  CHECK(j[0]["type"] == "enqueued");
  CHECK(j[1]["type"] == "suppression-added");
  CHECK(j[2]["type"] == "suppressed");
  auto text = cli({"history", "h@example.com"}).out;
  CHECK(text.find("enqueued  message 1  category customer-update  campaign c1  source cli") !=
        std::string::npos);
}

TEST_CASE("bulkmailctl cancel and retry a campaign") {
  Cli cli;
  auto file = cli.dir.write("list.csv", kUpdateColumns + "\na@example.com" + kUpdateValues +
                                            "\nb@example.com" + kUpdateValues + "\n");
  REQUIRE(
      cli({"import", "--category", "customer-update", "--campaign", "dec", file.string()}).status ==
      0);
  CHECK(cli({"cancel", "--campaign", "dec"}).out == "cancelled 2\n");
  CHECK(cli.status("dec")["cancelled"] == 2);
  CHECK(cli({"retry", "--campaign", "dec"}).out == "queued again 0\n");
  // A misspelt campaign is an error, not a campaign with nothing in it.
  for (const char* cmd : {"status", "cancel", "retry", "pause", "resume"}) {
    auto r = cli({cmd, "--campaign", "dce"});
    CAPTURE(cmd);
    CHECK(r.status == 1);
    CHECK(r.err == "bulkmailctl: unknown campaign 'dce' (bulkmailctl campaigns lists them)\n");
  }
}

TEST_CASE("a 1,000,000-row import streams: memory does not grow with the file") {
  Cli cli;
  auto write_rows = [&](const std::string& name, int n) {
    auto path = cli.dir / name;
    std::ofstream out(path);
    out << "email,first_name,plan,headline,body\n";
    for (int i = 0; i < n; ++i) {
      out << "user" << i << "@example.com,Name" << i << ",Fiber 500,Your plan,Details\n";
    }
    return path.string();
  };
  auto small = write_rows("small.csv", 100000);
  auto r = cli({"import", "--category", "customer-update", small});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  long rss_small = children_max_rss_kib();
  auto big = write_rows("big.csv", 1000000);
  r = cli({"import", "--category", "customer-update", big});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "campaign big: queued 1000000, already queued 0, suppressed 0, rejected 0\n");
  long rss_big = children_max_rss_kib();
  MESSAGE("peak RSS: 100k rows " << rss_small << " KiB, 1M rows " << rss_big << " KiB");
  CHECK(rss_big < rss_small + 16 * 1024);
  CHECK(rss_big < 64 * 1024);
}

TEST_CASE("unsubscribe-link prints links whose tokens carry the address and category") {
  Cli cli;
  auto r = cli({"unsubscribe-link", "--category", "research-invitation", "-"},
               "Ann@Example.com\n\nbob@example.com\n");
  REQUIRE_MESSAGE(r.status == 0, r.err);
  std::vector<std::string> lines;
  for (std::size_t p = 0, n; (n = r.out.find('\n', p)) != std::string::npos; p = n + 1)
    lines.push_back(r.out.substr(p, n - p));
  REQUIRE(lines.size() == 2);
  TokenCodec codec({std::string(kTestSecret)}, 0);
  const std::string prefix = "https://mail.example.com/unsubscribe/";
  const char* expected[] = {"ann@example.com", "bob@example.com"};
  const char* inputs[] = {"Ann@Example.com", "bob@example.com"};  // each line names its input
  for (std::size_t i = 0; i < 2; ++i) {
    auto tab = lines[i].find('\t');
    REQUIRE(tab != std::string::npos);
    CHECK(lines[i].substr(0, tab) == inputs[i]);
    lines[i] = lines[i].substr(tab + 1);
    REQUIRE(lines[i].rfind(prefix, 0) == 0);
    auto check = codec.verify(lines[i].substr(prefix.size()), 1'800'000'000'000);
    REQUIRE(check.status == TokenStatus::valid);
    CHECK(check.claims.address == expected[i]);
    CHECK(check.claims.category == "research-invitation");
  }
  // Every bad line is reported, and the good ones after it still get their links.
  r = cli({"unsubscribe-link", "--category", "customer-update", "-"},
          "ok@example.com\nbad\nworse\nfine@example.com\n");
  CHECK(r.status == 1);
  CHECK(r.err ==
        "bulkmailctl: stdin:2: bad address: the address has no '@'\n"
        "bulkmailctl: stdin:3: bad address: the address has no '@'\n"
        "bulkmailctl: 2 bad addresses on stdin\n");
  CHECK(r.out.find("ok@example.com\thttps://") == 0);
  CHECK(r.out.find("\nfine@example.com\thttps://") != std::string::npos);
  r = cli({"unsubscribe-link", "--category", "nope", "a@example.com"});
  CHECK(r.status == 1);
  CHECK(r.err == "bulkmailctl: unknown category 'nope'\n");
}

TEST_CASE("enqueue refuses a message that could not be sent, as preview does") {
  Cli cli;
  const std::string headline = "headline=" + std::string(2000, 'x');
  for (const char* command : {"enqueue", "preview"}) {
    CAPTURE(command);
    auto r = cli({command, "--category", "customer-update", "--to", "a@example.com", "--var",
                  "first_name=Ann", "--var", headline, "--var", "body=Details"});
    CHECK(r.status == 1);
    CHECK_MESSAGE(r.err.find("Subject has a part longer than 998 octets") != std::string::npos,
                  r.err);
    CHECK(r.out.empty());
  }
  auto r = cli({"enqueue", "--category", "customer-update", "--to", "a@example.com", "--var",
                "first_name=Ann"});
  CHECK(r.status == 1);
  CHECK(r.err ==
        "bulkmailctl: vars: the message would not be sent: template customer-update: variable "
        "'headline' is missing (used in subject)\n");
  CHECK(cli.status()["queued"] == 0);
}

TEST_CASE("a folder or an empty file as input is a clear error, never an abort") {
  Cli cli;
  const std::string dir = cli.dir.path().string();
  auto empty = cli.dir.write("empty.csv", "").string();
  struct Case {
    std::vector<std::string> args;
    int status;
    std::string error;
  };
  const Case cases[] = {
      {{"import", "--category", "customer-update", "--campaign", "c", dir},
       1,
       "bulkmailctl: cannot read " + dir + ": it is a folder, not a file\n"},
      {{"import", "--category", "customer-update", "--campaign", "c", "--format", "jsonl", dir},
       1,
       "bulkmailctl: cannot read " + dir + ": it is a folder, not a file\n"},
      {{"suppress", "import", dir}, 1, "bulkmailctl: cannot read " + dir + ": it is a folder"},
      {{"import", "--category", "customer-update", empty},
       1,
       "bulkmailctl: " + empty + ": line 1: the file is empty"},
      {{"suppress", "import", empty}, 1, "bulkmailctl: " + empty + ": line 1: the file is empty"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.args);
    auto r = cli(c.args);
    CHECK(r.status == c.status);
    CHECK_MESSAGE(r.err.find(c.error) != std::string::npos, r.err);
  }
  auto r = run_process({bin_dir() + "/bulkmailctl", "--config", dir, "status"});
  CHECK(r.status == 3);
  CHECK_MESSAGE(r.err.find(dir + ": cannot read the config file: it is a folder") == 0, r.err);
}

TEST_CASE("import: an unclosed quote costs one row, and the summary adds up to the rows") {
  Cli cli;
  auto path = cli.dir / "unclosed.csv";
  {
    std::ofstream out(path);
    out << kUpdateColumns << "\n";
    for (int i = 0; i < 2000; ++i)
      out << "user" << i << "@example.com," << (i == 1 ? "\"Pat" : "Pat") << ",Hi,Details\n";
  }
  auto r = cli({"import", "--category", "customer-update", path.string()});
  CHECK(r.status == 1);
  CHECK(r.out == "campaign unclosed: queued 1999, already queued 0, suppressed 0, rejected 1\n");
  CHECK(r.err ==
        "line 3: rejected: malformed CSV: a quoted field opened on line 3 is never closed; reading "
        "resumes on line 4\n");
}

TEST_CASE("import: a JSON Lines row naming a key twice is rejected, not read as the last") {
  Cli cli;
  auto file = cli.dir.write(
      "dup.jsonl",
      R"({"email":"a@example.com","first_name":"A","headline":"H","body":"B"})"
      "\n"
      R"({"email":"safe@example.com","email":"other@example.org","first_name":"B","headline":"H",)"
      R"("body":"B"})"
      "\n");
  auto r = cli({"import", "--category", "customer-update", file.string()});
  CHECK(r.status == 1);
  CHECK(r.out == "campaign dup: queued 1, already queued 0, suppressed 0, rejected 1\n");
  CHECK(r.err == "line 2: rejected: key 'email' is given twice (a row names each key once)\n");
  CHECK(cli({"history", "other@example.org"}).err.find("no events") != std::string::npos);
}

TEST_CASE("history shows a sent message's reply once") {
  Cli cli;
  REQUIRE(cli(with_vars({"enqueue", "--category", "customer-update", "--to", "s@example.com"}))
              .status == 0);
  {
    // What bulkmaild records for a delivery: the relay's reply line as classify_attempt() keeps it.
    SqliteStore store((cli.dir / "queue.db").string());
    auto claimed = store.claim_due("test", 1, now_millis() + 1, now_millis() + 60000);
    REQUIRE(claimed.size() == 1);
    store.record_outcomes(
        std::vector<Outcome>{{claimed[0].id, MessageState::sent, 250,
                              "250 2.0.0 Ok: queued as 4Xk9", 0, "", BounceClass::unknown}},
        now_millis());
  }
  auto r = cli({"history", "s@example.com"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK_MESSAGE(r.out.find("  sent  message 1  category customer-update  source dispatcher  250 "
                           "2.0.0 Ok: queued as 4Xk9\n") != std::string::npos,
                r.out);
  CHECK(r.out.find("250 250") == std::string::npos);
}

TEST_CASE("the database bulkmaild --check creates is the owner's alone") {
  Cli cli;  // ran bulkmaild --check under the usual umask
  struct stat st {};
  REQUIRE(::stat((cli.dir / "queue.db").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("bulkmailctl never creates a database - a wrong path is an error that names it") {
  Cli cli;
  // A copied config whose relative `database:` now points where no database is.
  TempDir elsewhere;
  auto config = write_config(elsewhere);
  auto db = elsewhere / "queue.db";
  for (std::vector<std::string> args :
       {std::vector<std::string>{"status"},
        {"suppress", "add", "mia@example.com"},
        with_vars({"enqueue", "--category", "customer-update", "--to", "a@example.com"})}) {
    args.insert(args.begin(), {bin_dir() + "/bulkmailctl", "--config", config});
    auto r = run_process(args);
    CHECK(r.status == 1);
    CHECK_MESSAGE(r.err.find("database " + db.string() + ": no database here") != std::string::npos,
                  r.err);
    CHECK_MESSAGE(r.err.find("bulkmaild --check") != std::string::npos, r.err);
    CHECK_FALSE(std::filesystem::exists(db));
  }
  // An empty file (touched by hand) is not a database either, and stays empty.
  { std::ofstream touch(db); }
  auto r = run_process({bin_dir() + "/bulkmailctl", "--config", config, "status"});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("not yet a bulkmail database") != std::string::npos, r.err);
  CHECK(std::filesystem::file_size(db) == 0);
  // An older schema: bulkmailctl leaves migrating to bulkmaild.
  {
    SQLite::Database old(db.string(), SQLite::OPEN_READWRITE);
    old.exec("CREATE TABLE messages (id INTEGER PRIMARY KEY); PRAGMA user_version = 1");
  }
  r = run_process({bin_dir() + "/bulkmailctl", "--config", config, "status"});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("schema version 1 is older") != std::string::npos, r.err);
  SQLite::Database after(db.string(), SQLite::OPEN_READONLY);
  CHECK(after.execAndGet("PRAGMA user_version").getInt() == 1);
  // The database the fixture's bulkmaild --check made works.
  CHECK(cli({"status"}).status == 0);
}

TEST_CASE("status says the daemon is not running when it is not, whatever it last wrote") {
  Cli cli;
  auto fresh = cli({"status"});
  REQUIRE(fresh.status == 0);
  CHECK(fresh.out.find("dispatch: not running (no bulkmaild has run on this database yet)") !=
        std::string::npos);
  auto db = (cli.dir.path() / "queue.db").string();
  // What a daemon killed while sending leaves behind.
  SqliteStore(db).set_dispatch_state({"running", "", 1'700'000'000'000, ""});
  auto r = cli({"status"});
  CHECK(r.out.find("dispatch: not running") != std::string::npos);
  {
    auto lock = InstanceLock::acquire(db);  // as a running daemon holds it
    REQUIRE(lock);
    r = cli({"status"});
    CHECK(r.out.find("dispatch: running since") != std::string::npos);
  }
}

TEST_CASE(
    "import --dry-run reports and queues nothing, and --update corrects what is not sent yet") {
  Cli cli;
  auto file = cli.dir.write("dec.csv", kUpdateColumns + "\n" + "a@example.com,Pat,Old plan,Old\n" +
                                           "not-an-address,Bob,x,y\n");
  auto dry = cli({"import", "--category", "customer-update", "--dry-run", file});
  CHECK(dry.status == 1);  // a row was rejected
  CHECK(dry.out.find("dry run, nothing queued): would queue 1, suppressed 0, rejected 1") !=
        std::string::npos);
  CHECK(dry.err.find("line 3: rejected") != std::string::npos);
  CHECK(cli.status()["queued"] == 0);
  // The real import, then a corrected file.
  cli({"import", "--category", "customer-update", file});
  auto fixed = cli.dir.write("dec.csv", kUpdateColumns + "\n" + "a@example.com,Pat,New plan,New\n");
  auto plain = cli({"import", "--category", "customer-update", fixed});
  CHECK(plain.err.find("a corrected file needs --update") != std::string::npos);
  auto up = cli({"import", "--category", "customer-update", "--update", fixed});
  CHECK(up.status == 0);
  CHECK(up.out.find("queued 0, updated 1, already queued 0") != std::string::npos);
  auto h = cli({"history", "a@example.com"});
  CHECK(h.out.find("vars-updated") != std::string::npos);
}

TEST_CASE(
    "usage errors exit 2 and say what was wrong, --version works, a missing config is not found") {
  Cli cli;
  auto version = cli({"--version"});
  CHECK(version.status == 0);
  CHECK(version.out == std::string("bulkmailctl ") + BULKMAIL_TEST_VERSION + "\n");
  auto bogus = cli({"bogus"});
  CHECK(bogus.status == 2);
  CHECK(bogus.err.find("unknown subcommand 'bogus'") != std::string::npos);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"suppress", "add", "a@example.com", "--reason", "nope"},
        {"suppress", "export", "--hashed", "md5"},
        {"import", "--category", "customer-update", "--format", "xml", "x.csv"}}) {
    auto r = cli(args);
    CAPTURE(args.back());
    CHECK(r.status == 2);
  }
  auto missing = run_process(
      {bin_dir() + "/bulkmailctl", "--config", (cli.dir.path() / "none.yaml").string(), "status"});
  CHECK(missing.status == 3);
  CHECK(missing.err.find("none.yaml: config file not found") != std::string::npos);
}

TEST_CASE("a file of the same name elsewhere never joins a campaign unless --campaign says so") {
  Cli cli;
  auto nov = cli.dir.write("nov/list.csv", kUpdateColumns + "\na@example.com" + kUpdateValues +
                                               "\nb@example.com" + kUpdateValues + "\n");
  auto dec = cli.dir.write("dec/list.csv", kUpdateColumns + "\na@example.com" + kUpdateValues +
                                               "\nb@example.com" + kUpdateValues +
                                               "\nc@example.com" + kUpdateValues + "\n");
  auto r = cli({"import", "--category", "customer-update", nov.string()});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  // The same file again is a re-run: recognized, nothing queued twice.
  r = cli({"import", "--category", "customer-update", nov.string()});
  CHECK(r.status == 0);
  CHECK(r.out == "campaign list: queued 0, already queued 2, suppressed 0, rejected 0\n");
  // December's file of the same name is refused, naming both files and the way out; a dry run
  // says the same; nothing is queued.
  for (bool dry : {false, true}) {
    std::vector<std::string> args = {"import", "--category", "customer-update", dec.string()};
    if (dry) args.insert(args.begin() + 1, "--dry-run");
    r = cli(args);
    CAPTURE(dry);
    CHECK(r.status == 1);
    CHECK_MESSAGE(r.err.find("campaign 'list' already exists (imported from " + nov.string() +
                             "), and this file is " + dec.string()) != std::string::npos,
                  r.err);
    CHECK(r.err.find("Give --campaign list to add these recipients to it") != std::string::npos);
  }
  CHECK(cli.status("list")["queued"] == 2);
  // Named explicitly, it may join (only c is new), or start a campaign of its own.
  r = cli({"import", "--category", "customer-update", "--campaign", "list", dec.string()});
  CHECK(r.out == "campaign list: queued 1, already queued 2, suppressed 0, rejected 0\n");
  r = cli({"import", "--category", "customer-update", "--campaign", "dec-list", dec.string()});
  CHECK(r.out == "campaign dec-list: queued 3, already queued 0, suppressed 0, rejected 0\n");
  // A campaign named by enqueue is not any file's either.
  REQUIRE(cli(with_vars({"enqueue", "--category", "customer-update", "--to", "z@example.com",
                         "--campaign", "promo"}))
              .status == 0);
  auto promo = cli.dir.write("promo.csv", kUpdateColumns + "\nz@example.com" + kUpdateValues);
  r = cli({"import", "--category", "customer-update", promo.string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("campaign 'promo' already exists (not from an import of this file)") !=
        std::string::npos);
}

TEST_CASE("campaigns lists each campaign, and pause holds one until resume") {
  Cli cli;
  CHECK(cli({"campaigns"}).out == "no campaigns yet\n");
  CHECK(cli({"campaigns", "--json"}).out == "[]\n");
  auto file = cli.dir.write("nov.csv", kUpdateColumns + "\na@example.com" + kUpdateValues +
                                           "\nb@example.com" + kUpdateValues + "\n");
  REQUIRE(cli({"import", "--category", "customer-update", file.string()}).status == 0);
  REQUIRE(cli(with_vars({"enqueue", "--category", "customer-update", "--to", "c@example.com",
                         "--campaign", "promo"}))
              .status == 0);
  REQUIRE(cli({"cancel", "--campaign", "promo"}).status == 0);
  auto r = cli({"pause", "--campaign", "nov"});
  CHECK(r.status == 0);
  CHECK(r.out == "campaign nov paused: 2 waiting messages held (messages being sent finish)\n");
  CHECK(cli({"pause", "--campaign", "nov"}).out.find("campaign nov is already paused (since ") ==
        0);
  auto j = nlohmann::json::parse(cli({"campaigns", "--json"}).out);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["name"] == "nov");
  CHECK(j[0]["origin"] == std::filesystem::canonical(file).string());
  CHECK(j[0]["queued"] == 2);
  CHECK(j[0]["total"] == 2);
  CHECK(j[0]["paused"] == true);
  CHECK(j[0]["paused_since"].is_string());
  CHECK(j[1]["name"] == "promo");
  CHECK(j[1]["cancelled"] == 1);
  CHECK(j[1]["paused"] == false);
  CHECK(j[1]["paused_since"].is_null());
  CHECK(j[1]["created"].get<std::string>().size() == 24);  // 2026-11-29T05:00:00.000Z
  auto text = cli({"campaigns"}).out;
  CHECK(text.find("campaign ") == 0);
  CHECK(text.find("\nnov ") != std::string::npos);
  CHECK(text.find("since ") != std::string::npos);
  CHECK(cli({"status", "--campaign", "nov"}).out.find("campaign nov: paused since ") !=
        std::string::npos);
  r = cli({"resume", "--campaign", "nov"});
  CHECK(r.out == "campaign nov resumed: 2 waiting messages released\n");
  CHECK(cli({"campaigns", "--json"}).out.find("\"paused\":true") == std::string::npos);
}

TEST_CASE("status --campaign shows bounced and complained, the rates, and why it paused itself") {
  Cli cli;
  std::string reason = [&] {
    SqliteStore s((cli.dir.path() / "queue.db").string());
    return campaign_that_paused_itself(s).pause_reason;
  }();
  auto r = cli({"status", "--campaign", "nov"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  for (const std::string& line :
       {std::string("queued      2\n"), std::string("sent        2\n"),
        std::string("bounced     1\n"), std::string("complained  1\n"),
        std::string("failed      1\n"), std::string("total       7\n"),
        std::string("hard-bounce rate 20.00% (1 of 5 answered)\n"),
        std::string("complaint rate 20.00% (1 of 5 answered)\n"),
        std::string("block rate 20.00% (1 of 5 answered)\n"),
        ", automatically: " + reason + " (bulkmailctl resume --campaign nov)\n"}) {
    CAPTURE(line);
    CHECK(r.out.find(line) != std::string::npos);
  }
  CHECK(r.out.find("campaign nov: paused since ") != std::string::npos);
  // The rates come after the states, and the pause after the rates.
  CHECK(r.out.find("total ") < r.out.find("hard-bounce rate"));
  CHECK(r.out.find("block rate") < r.out.find("campaign nov: paused"));

  // --json: the same figures, from campaign_json, under "campaign".
  auto j = cli.status("nov");
  CHECK(j["bounced"] == 1);
  CHECK(j["complained"] == 1);
  REQUIRE(j.contains("campaign"));
  CHECK(j["campaign"]["name"] == "nov");
  CHECK(j["campaign"]["answered"] == 5);
  CHECK(j["campaign"]["complaint_rate"] == 0.2);
  CHECK(j["campaign"]["hard_bounce_rate"] == 0.2);
  CHECK(j["campaign"]["block_rate"] == 0.2);
  CHECK(j["campaign"]["pause_reason"] == reason);
  CHECK(j["campaign"]["queued"] == j["queued"]);
  CHECK_FALSE(cli.status().contains("campaign"));

  // campaigns: the rates in short, and that it paused itself; --json as campaign_json.
  auto list = cli({"campaigns"}).out;
  CHECK(list.find("hard-bounce%") != std::string::npos);
  CHECK(list.find("complaint%") != std::string::npos);
  CHECK(list.find("20.00%") != std::string::npos);
  CHECK(list.find(", automatically\n") != std::string::npos);
  auto all = nlohmann::json::parse(cli({"campaigns", "--json"}).out);
  REQUIRE(all.size() == 1);
  CHECK(all[0] == j["campaign"]);

  // pause says it is paused already and why; resume says what it overrode.
  CHECK(cli({"pause", "--campaign", "nov"}).out.find(", automatically: " + reason + ")\n") !=
        std::string::npos);
  r = cli({"resume", "--campaign", "nov"});
  CHECK(r.out == "campaign nov resumed: 2 waiting messages released\nit had paused itself (" +
                     reason + "); it pauses itself again only on what is answered from now on\n");
  auto after = cli({"status", "--campaign", "nov"}).out;
  CHECK(after.find("paused") == std::string::npos);
  CHECK(after.find("complaint rate 20.00% (1 of 5 answered)\n") != std::string::npos);
  CHECK(cli.status("nov")["campaign"]["pause_reason"].is_null());

  // Paused by a person: said so, and no reason.
  REQUIRE(cli({"pause", "--campaign", "nov"}).status == 0);
  CHECK(cli({"status", "--campaign", "nov"}).out.find(" by an operator (bulkmailctl resume ") !=
        std::string::npos);
  r = cli({"resume", "--campaign", "nov"});
  CHECK(r.out == "campaign nov resumed: 2 waiting messages released\n");
}

TEST_CASE("status --campaign of a campaign nothing was answered for has no rates yet") {
  Cli cli;
  REQUIRE(cli(with_vars({"enqueue", "--category", "customer-update", "--to", "c@example.com",
                         "--campaign", "promo"}))
              .status == 0);
  auto r = cli({"status", "--campaign", "promo"});
  CHECK(r.out.find("\nno message answered yet\n") != std::string::npos);
  CHECK(r.out.find(" rate ") == std::string::npos);
  // "-" for each rate while nothing is answered, then the paused column.
  CHECK(cli({"campaigns"}).out.find("-            -          -       no\n") != std::string::npos);
  auto j = cli.status("promo");
  CHECK(j["campaign"]["answered"] == 0);
  CHECK(j["campaign"]["complaint_rate"] == 0.0);
}

TEST_CASE("forget erases a person and keeps only their opt-out, as a hash") {
  Cli cli;
  auto file = cli.dir.write("nov.csv", kUpdateColumns +
                                           "\nmia@example.com,Mia,Your plan,Mia's "
                                           "details\nbo@example.com" +
                                           kUpdateValues + "\n");
  REQUIRE(cli({"import", "--category", "customer-update", file.string()}).status == 0);
  REQUIRE(cli({"suppress", "add", "mia@example.com", "--category", "research-invitation",
               "--reason", "unsubscribe"})
              .status == 0);
  auto r = cli({"forget", "Mia@Example.com"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("erased 1 message (with their variables) and 2 events\n") == 0);
  CHECK(r.out.find("kept: suppression research-invitation, unsubscribe since ") !=
        std::string::npos);
  CHECK(r.out.find("mia") == std::string::npos);
  // Nothing in the database file holds her address or her variables.
  SQLite::Database db((cli.dir / "queue.db").string());
  for (const char* table : {"messages", "events", "suppressions"}) {
    SQLite::Statement st(db, std::string("SELECT * FROM ") + table);
    while (st.executeStep()) {
      for (int i = 0; i < st.getColumnCount(); ++i) {
        std::string v = st.getColumn(i).getString();
        CAPTURE(table);
        CHECK(v.find("mia") == std::string::npos);
        CHECK(v.find("Mia") == std::string::npos);
      }
    }
  }
  // Her history: one event, no personal data.
  auto h = nlohmann::json::parse(cli({"history", "mia@example.com", "--json"}).out);
  REQUIRE(h.size() == 1);
  CHECK(h[0]["type"] == "forgotten");
  // An import of her address later is still suppressed for research invitations.
  auto research = cli.dir.write(
      "panel.csv",
      "email,first_name,study_name,duration_minutes,study_format,incentive,study_url,closes_on\n"
      "mia@example.com,Mia,S,20,a survey,$5,https://research.example.com/s,Dec 1\n");
  r = cli({"import", "--category", "research-invitation", research.string()});
  CHECK(r.out == "campaign panel: queued 0, already queued 0, suppressed 1, rejected 0\n");
  // Exports leave the hash out (only this database can match it), and say so.
  r = cli({"suppress", "export"});
  CHECK(r.out == "email,category,reason,source,created_at\n");
  CHECK(r.err.find("1 suppression of forgotten addresses not exported") != std::string::npos);
  // Someone never stored: nothing to erase, nothing kept.
  r = cli({"forget", "nobody@example.com"});
  CHECK(r.out ==
        "erased 0 messages (with their variables) and 0 events\n"
        "no suppression: nothing of the address is kept\n");
}

TEST_CASE("a pipe or device never names a campaign, and a refused file leaves no campaign behind") {
  Cli cli;
  auto list = kUpdateColumns + "\na@example.com" + kUpdateValues + "\n";
  auto r = cli({"import", "--category", "customer-update", "/dev/stdin"}, list);
  CHECK(r.status == 1);
  CHECK(r.err.find("/dev/stdin is not a regular file") != std::string::npos);
  CHECK(cli({"import", "--category", "customer-update", "--campaign", "piped", "/dev/stdin"}, list)
            .status == 0);
  // A file refused whole (no headline column) creates no campaign; its corrected copy elsewhere
  // then takes the name.
  auto bad = cli.dir.write("bad/jan.csv", "email,first_name\na@example.com,Pat\n");
  auto good = cli.dir.write("good/jan.csv", list);
  CHECK(cli({"import", "--category", "customer-update", bad.string()}).status == 1);
  auto names = nlohmann::json::parse(cli({"campaigns", "--json"}).out);
  REQUIRE(names.size() == 1);
  CHECK(names[0]["name"] == "piped");
  r = cli({"import", "--category", "customer-update", good.string()});
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK(r.out == "campaign jan: queued 1, already queued 0, suppressed 0, rejected 0\n");
}

TEST_CASE("a config YAML cannot parse still lets status report, and says a daemon runs on") {
  Cli cli;
  auto db = (cli.dir.path() / "queue.db").string();
  SqliteStore(db).set_dispatch_state({"running", "", 1'700'000'000'000, ""});
  SqliteStore(db).set_config_problem("the config file is invalid (x)");
  std::string good;
  {
    std::ifstream in(cli.config);
    good.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  cli.dir.write("bulkmail.yaml", good + "sender: [\n");
  auto lock = InstanceLock::acquire(db);  // as a running daemon holds it
  REQUIRE(lock);
  auto r = cli({"status"});
  CHECK(r.status == 3);
  CHECK(r.err.find("YAML syntax error") != std::string::npos);
  CHECK(r.err.find("bulkmaild is still running on the previous version") != std::string::npos);
  CHECK(r.out.find("queued") == 0);
  CHECK(r.out.find("config: the config file is invalid (x)") != std::string::npos);
  r = cli({"campaigns"});
  CHECK(r.status == 3);
  CHECK(r.err.find("bulkmaild is still running") != std::string::npos);
}

TEST_CASE("a stopped daemon's config problem is not shown: it runs on no config") {
  Cli cli;
  auto db = (cli.dir.path() / "queue.db").string();
  SqliteStore(db).set_dispatch_state({"stopped", "", 1'700'000'000'000, ""});
  SqliteStore(db).set_config_problem("the config file is invalid (x)");
  CHECK(cli({"status"}).out.find("config:") == std::string::npos);
  CHECK_FALSE(cli.status()["dispatch"].contains("config_problem"));
}

TEST_CASE("--help lists every command in order, and an unknown one is named") {
  Cli cli;
  auto r = cli({"--help"});
  CHECK(r.status == 0);
  std::size_t at = 0;
  for (const char* command :
       {"enqueue", "import", "preview", "dkim-record", "status", "suppress", "unsubscribe-link",
        "history", "forget", "campaigns", "pause", "resume", "cancel", "retry"}) {
    CAPTURE(command);
    at = r.out.find("\n  " + std::string(command) + " ", at);
    CHECK_MESSAGE(at != std::string::npos, r.out);
  }
  r = cli({"suppress", "--help"});
  CHECK(r.status == 0);
  for (const char* command : {"add", "remove", "list", "import", "export"}) {
    CHECK(r.out.find("\n  " + std::string(command) + " ") != std::string::npos);
  }
  r = cli({"frobnicate"});
  CHECK(r.status == 2);
  CHECK(r.err == "bulkmailctl: unknown subcommand 'frobnicate' (see bulkmailctl --help)\n");
}

TEST_CASE(
    "preview as the only command loads the config itself: no database needed, and a broken "
    "config is named") {
  TempDir dir;
  auto config = write_config(dir);  // and no bulkmaild --check: there is no database
  auto preview = [&] {
    return run_process(with_vars({bin_dir() + "/bulkmailctl", "--config", config, "preview",
                                  "--category", "customer-update", "--to", "jane@example.com"}));
  };
  auto r = preview();
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK(r.err.empty());
  CHECK_MESSAGE(r.out.find("To: jane@example.com\r\n") != std::string::npos, r.out);
  CHECK_FALSE(std::filesystem::exists(dir / "queue.db"));

  dir.write("bulkmail.yaml", "database: queue.db\n");  // no sender, relay, opt-out or category
  r = preview();
  CHECK(r.status == 3);
  CHECK(r.out.empty());
  CHECK_MESSAGE(r.err.find(config + ":") == 0, r.err);
  CHECK(r.err.find("sender: is required") != std::string::npos);
  CHECK(r.err.find("bulkmailctl: the config is invalid (") != std::string::npos);

  std::filesystem::remove(config);
  r = preview();
  CHECK(r.status == 3);
  CHECK(r.err == "bulkmailctl: " + config +
                     ": config file not found (give --config FILE or set $BULKMAIL_CONFIG)\n");
}

TEST_CASE("preview --envelope puts the envelope sender on top: the VERP address with bounces") {
  TempDir dir;
  auto config = write_config(dir);
  auto preview = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {bin_dir() + "/bulkmailctl",
                                     "--config",
                                     config,
                                     "preview",
                                     "--category",
                                     "customer-update",
                                     "--to",
                                     "jane@example.com"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_process(with_vars(args));
  };
  // Without the flag, the exact bytes as before: no Return-Path, no CFBL-Address.
  auto r = preview({});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.rfind("From: ", 0) == 0);
  CHECK(r.out.find("Return-Path") == std::string::npos);
  CHECK(r.out.find("CFBL-Address") == std::string::npos);
  r = preview({"--envelope"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.err.empty());
  CHECK_MESSAGE(r.out.rfind("Return-Path: <updates@mail.example.com>\r\nFrom: ", 0) == 0, r.out);

  write_config(dir, valid_config_yaml() + "bounces:\n  domain: bounces.mail.example.com\n");
  r = preview({"--envelope"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  std::string line = r.out.substr(0, r.out.find("\r\n"));
  CAPTURE(line);
  REQUIRE(line.rfind("Return-Path: <b-", 0) == 0);
  auto at = line.find('@');
  REQUIRE(at != std::string::npos);
  CHECK(line.substr(at) == "@bounces.mail.example.com>");
  CHECK(VerpCodec({kTestSecret}).verify(line.substr(14, at - 14)) == 0);  // a preview: message 0
  CHECK(r.out.find("\r\nCFBL-Address: fbl@bounces.mail.example.com; report=arf\r\n") !=
        std::string::npos);
  r = preview({});
  CHECK(r.out.rfind("From: ", 0) == 0);
  CHECK(r.out.find("Return-Path") == std::string::npos);
}

TEST_CASE("a database bulkmail finds wrong in mid-command is a database error, never an abort") {
  Cli cli;
  {
    SQLite::Database db((cli.dir / "queue.db").string(), SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM meta WHERE key = 'forget_salt'");
  }
  // The store throws a plain std::runtime_error here, not an SQLite::Exception.
  auto r = cli({"forget", "mia@example.com"});
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(r.err == "bulkmailctl: database error: the database has no forget_salt\n");
}

TEST_CASE(
    "bounce parse prints what each report says, one JSON object a file, and changes nothing") {
  std::string data = source_dir() + "/tests/data/bounces/";
  // No config and no database: the parser needs neither.
  auto r = run_process({bin_dir() + "/bulkmailctl", "--config", "/nonexistent/bulkmail.yaml",
                        "bounce", "parse", "--json", data + "postfix-hard.eml",
                        data + "arf-abuse.eml", data + "autoreply-rfc3834.eml"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  std::istringstream lines(r.out);
  std::vector<nlohmann::json> found;
  for (std::string line; std::getline(lines, line);) found.push_back(nlohmann::json::parse(line));
  REQUIRE(found.size() == 3);
  CHECK(found[0]["file"] == data + "postfix-hard.eml");
  CHECK(found[0]["kind"] == "bounce");
  REQUIRE(found[0]["recipients"].size() == 1);
  CHECK(found[0]["recipients"][0]["address"] == "nobody@example.org");
  CHECK(found[0]["recipients"][0]["status"] == "5.1.1");
  CHECK(found[0]["recipients"][0]["class"] == "hard");
  CHECK(found[0]["original"]["message_id"] == "<20240115100000.a1b2c3d4e5f6@mail.example.com>");
  CHECK(found[1]["kind"] == "complaint");
  CHECK(found[1]["feedback_type"] == "abuse");
  CHECK(found[1]["recipients"].empty());
  CHECK(found[2]["kind"] == "auto-reply");

  // The text form: a line a file, a line a recipient.
  r = run_process({bin_dir() + "/bulkmailctl", "bounce", "parse", data + "qmail.eml"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find(data + "qmail.eml: bounce") == 0);
  CHECK(r.out.find("\n  nobody@example.net failed 5.1.1 0 hard: ") != std::string::npos);

  // What is not a mail message at all is named, the other files still read, and the exit is 1.
  r = run_process({bin_dir() + "/bulkmailctl", "bounce", "parse", data + "garbage-empty.eml",
                   data + "postfix-hard.eml"});
  CHECK(r.status == 1);
  CHECK(r.err.find("garbage-empty.eml: ") != std::string::npos);
  CHECK(r.out.find(data + "postfix-hard.eml: bounce") == 0);
  // A file that does not exist is bad usage.
  r = run_process({bin_dir() + "/bulkmailctl", "bounce", "parse", data + "no-such-file.eml"});
  CHECK(r.status == 2);
}
