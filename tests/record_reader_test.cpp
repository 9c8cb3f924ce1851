#include "intake/record_reader.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("format by extension") {
  CHECK(format_for_path("list.csv") == ImportFormat::csv);
  CHECK(format_for_path("list.JSONL") == ImportFormat::jsonl);
  CHECK(format_for_path("list.ndjson") == ImportFormat::jsonl);
  CHECK(format_for_path("-") == ImportFormat::csv);
}

TEST_CASE("CSV rows are named by the header") {
  std::istringstream in("email, first_name\na@example.com,Ann\nb@example.com\n");
  auto r = RowReader::open(in, ImportFormat::csv);
  Row row;
  REQUIRE(r->next(row));
  CHECK(row.line == 2);
  REQUIRE(row.field("first_name"));
  CHECK(*row.field("first_name") == "Ann");
  REQUIRE(r->next(row));
  CHECK(row.error.find("expected 2 fields as in the header, found 1") != std::string::npos);
  CHECK_FALSE(r->next(row));
}

TEST_CASE("a bad CSV header is fatal") {
  std::istringstream in("email,email\na@example.com,b\n");
  auto r = RowReader::open(in, ImportFormat::csv);
  Row row;
  REQUIRE(r->next(row));
  CHECK(row.fatal);
  CHECK(row.error.find("names column 'email' twice") != std::string::npos);
}

TEST_CASE("JSON Lines rows") {
  std::istringstream in(
      "{\"email\":\"a@example.com\",\"n\":3,\"vip\":true,\"skip\":null}\n\nnot "
      "json\n[1]\n{\"email\":\"b@example.com\",\"x\":{\"y\":1}}\n");
  auto r = RowReader::open(in, ImportFormat::jsonl);
  Row row;
  REQUIRE(r->next(row));
  CHECK(row.line == 1);
  CHECK(*row.field("n") == "3");
  CHECK(*row.field("vip") == "true");
  CHECK_FALSE(row.field("skip"));
  REQUIRE(r->next(row));
  CHECK(row.line == 3);
  CHECK(row.error == "not valid JSON");
  REQUIRE(r->next(row));
  CHECK(row.error == "not a JSON object");
  REQUIRE(r->next(row));
  CHECK(row.line == 5);
  CHECK(row.error.find("field 'x' holds an object or array") != std::string::npos);
  CHECK_FALSE(r->next(row));
}

TEST_CASE("JSON Lines: a key given twice is a rejected row naming the key") {
  std::istringstream in(
      "{\"email\":\"a@example.com\",\"email\":\"b@example.com\"}\n"
      "{\"email\":\"c@example.com\",\"first_name\":\"Cy\",\"first_name\":\"Cyd\"}\n"
      "{\"email\":\"d@example.com\"}\n");
  auto r = RowReader::open(in, ImportFormat::jsonl);
  Row row;
  REQUIRE(r->next(row));
  CHECK(row.line == 1);
  CHECK(row.error == "key 'email' is given twice (a row names each key once)");
  CHECK_FALSE(row.fatal);
  REQUIRE(r->next(row));
  CHECK(row.line == 2);
  CHECK(row.error == "key 'first_name' is given twice (a row names each key once)");
  REQUIRE(r->next(row));
  CHECK(row.error.empty());
  CHECK(*row.field("email") == "d@example.com");
  CHECK_FALSE(r->next(row));
}

TEST_CASE("an empty CSV file is fatal: it has no header row") {
  for (const char* text : {"", "\n\n", "\xEF\xBB\xBF"}) {
    CAPTURE(text);
    std::istringstream in(text);
    auto r = RowReader::open(in, ImportFormat::csv);
    Row row;
    REQUIRE(r->next(row));
    CHECK(row.fatal);
    CHECK(row.line == 1);
    CHECK(row.error.find("the file is empty") == 0);
  }
}

TEST_CASE("a folder read as an import is a fatal row with the reason") {
  TempDir dir;
  for (ImportFormat f : {ImportFormat::csv, ImportFormat::jsonl}) {
    std::ifstream in(dir.path());  // a folder opens, but reading it fails
    auto r = RowReader::open(in, f);
    Row row;
    REQUIRE(r->next(row));
    CHECK(row.fatal);
    CHECK(row.line == 1);
    CHECK(row.error == "cannot read the file: Is a directory");
    CHECK_FALSE(r->next(row));
  }
}

TEST_CASE("CSV: the email column whatever its case, and a header without one is one fatal error") {
  std::istringstream upper("EMAIL,first_name\na@example.com,Ann\n");
  auto r = RowReader::open(upper, ImportFormat::csv);
  Row row;
  REQUIRE(r->next(row));
  REQUIRE(row.field("email"));
  CHECK(*row.field("email") == "a@example.com");
  std::istringstream none("mail,first_name\na@example.com,Ann\nb@example.com,Bob\n");
  auto n = RowReader::open(none, ImportFormat::csv);
  REQUIRE(n->next(row));
  CHECK(row.fatal);
  CHECK(row.error.find("the header row has no 'email' column") != std::string::npos);
  // (The importer stops at a fatal row: one error for the file, not one per row.)
}
