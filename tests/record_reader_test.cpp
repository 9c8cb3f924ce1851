#include "intake/record_reader.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// What one call of next() gave, as the tests look at it.
struct Read {
  std::size_t line = 0;  // the reader's line()
  std::string error;     // empty: `row` was read
  bool fatal = false;    // the reader's stopped()
  Row row;
};

// The next row or rejection; the test fails at the end of the input.
Read read_next(RowReader& r) {
  auto got = r.next();
  REQUIRE(got);
  if (!*got) return {r.line(), got->error().message, r.stopped(), {}};
  return {r.line(), "", r.stopped(), std::move(**got)};
}

}  // namespace

TEST_CASE("format by extension") {
  CHECK(format_for_path("list.csv") == ImportFormat::csv);
  CHECK(format_for_path("list.JSONL") == ImportFormat::jsonl);
  CHECK(format_for_path("list.ndjson") == ImportFormat::jsonl);
  CHECK(format_for_path("-") == ImportFormat::csv);
}

TEST_CASE("CSV rows are named by the header") {
  std::istringstream in("email, first_name\na@example.com,Ann\nb@example.com\n");
  auto r = RowReader::open(in, ImportFormat::csv);
  Read got = read_next(*r);
  CHECK(got.error.empty());
  CHECK_FALSE(got.fatal);
  CHECK(got.line == 2);
  CHECK(got.row.line == 2);
  REQUIRE(got.row.field("first_name"));
  CHECK(*got.row.field("first_name") == "Ann");
  CHECK_FALSE(got.row.field("last_name"));
  got = read_next(*r);
  CHECK(got.line == 3);
  CHECK(got.error == "malformed CSV: expected 2 fields as in the header, found 1");
  CHECK_FALSE(got.fatal);
  CHECK_FALSE(r->next());
  CHECK_FALSE(r->stopped());
}

TEST_CASE("a malformed CSV record is a rejected row - the next one is read") {
  std::istringstream in("email,name\nx\"y@example.com,z\nb@example.com,Bo\n");
  auto r = RowReader::open(in, ImportFormat::csv);
  Read got = read_next(*r);
  CHECK(got.line == 2);
  CHECK(got.error.rfind("malformed CSV: a quote inside an unquoted field 1", 0) == 0);
  CHECK_FALSE(got.fatal);
  got = read_next(*r);
  CHECK(got.error.empty());
  CHECK(got.line == 3);
  CHECK(*got.row.field("name") == "Bo");
  CHECK_FALSE(r->next());
}

TEST_CASE("a bad CSV header is fatal - nothing after it is read") {
  std::istringstream in("email,email\na@example.com,b\n");
  auto r = RowReader::open(in, ImportFormat::csv);
  Read got = read_next(*r);
  CHECK(got.fatal);
  CHECK(got.line == 1);
  CHECK(got.error == "the header row names column 'email' twice");
  CHECK_FALSE(r->next());

  std::istringstream blank("email,,name\na@example.com,b,c\n");
  r = RowReader::open(blank, ImportFormat::csv);
  got = read_next(*r);
  CHECK(got.fatal);
  CHECK(got.error == "the header row has an empty column name");

  std::istringstream malformed("\n\nemail,\"name\nx\n");
  r = RowReader::open(malformed, ImportFormat::csv);
  got = read_next(*r);
  CHECK(got.fatal);
  CHECK(got.line == 3);
  CHECK(got.error.rfind("the header row is malformed: a quoted field opened on line 3", 0) == 0);
  CHECK_FALSE(r->next());
}

TEST_CASE("JSON Lines rows") {
  std::istringstream in(
      "{\"email\":\"a@example.com\",\"n\":3,\"vip\":true,\"skip\":null}\n\nnot "
      "json\n[1]\n{\"email\":\"b@example.com\",\"x\":{\"y\":1}}\n");
  auto r = RowReader::open(in, ImportFormat::jsonl);
  Read got = read_next(*r);
  CHECK(got.error.empty());
  CHECK(got.line == 1);
  CHECK(got.row.line == 1);
  CHECK(*got.row.field("n") == "3");
  CHECK(*got.row.field("vip") == "true");
  CHECK_FALSE(got.row.field("skip"));
  got = read_next(*r);
  CHECK(got.line == 3);
  CHECK(got.error == "not valid JSON");
  got = read_next(*r);
  CHECK(got.line == 4);
  CHECK(got.error == "not a JSON object");
  got = read_next(*r);
  CHECK(got.line == 5);
  CHECK(got.error ==
        "field 'x' holds an object or array; only text, numbers and true/false are allowed");
  CHECK_FALSE(got.fatal);
  CHECK_FALSE(r->next());
  CHECK_FALSE(r->stopped());
}

TEST_CASE("JSON Lines: a key given twice is a rejected row naming the key") {
  std::istringstream in(
      "{\"email\":\"a@example.com\",\"email\":\"b@example.com\"}\n"
      "{\"email\":\"c@example.com\",\"first_name\":\"Cy\",\"first_name\":\"Cyd\"}\n"
      "{\"email\":\"d@example.com\"}\n");
  auto r = RowReader::open(in, ImportFormat::jsonl);
  Read got = read_next(*r);
  CHECK(got.line == 1);
  CHECK(got.error == "key 'email' is given twice (a row names each key once)");
  CHECK_FALSE(got.fatal);
  got = read_next(*r);
  CHECK(got.line == 2);
  CHECK(got.error == "key 'first_name' is given twice (a row names each key once)");
  got = read_next(*r);
  CHECK(got.error.empty());
  CHECK(*got.row.field("email") == "d@example.com");
  CHECK_FALSE(r->next());
}

TEST_CASE("an empty CSV file is fatal: it has no header row") {
  for (const char* text : {"", "\n\n", "\xEF\xBB\xBF"}) {
    CAPTURE(text);
    std::istringstream in(text);
    auto r = RowReader::open(in, ImportFormat::csv);
    Read got = read_next(*r);
    CHECK(got.fatal);
    CHECK(got.line == 1);
    CHECK(got.error.find("the file is empty") == 0);
    CHECK_FALSE(r->next());
  }
}

TEST_CASE("a folder read as an import is a fatal row with the reason") {
  TempDir dir;
  for (ImportFormat f : {ImportFormat::csv, ImportFormat::jsonl}) {
    std::ifstream in(dir.path());  // a folder opens, but reading it fails
    auto r = RowReader::open(in, f);
    Read got = read_next(*r);
    CHECK(got.fatal);
    CHECK(got.line == 1);
    CHECK(got.error == "cannot read the file: Is a directory");
    CHECK_FALSE(r->next());
  }
}

TEST_CASE("CSV: the email column whatever its case, and a header without one is one fatal error") {
  std::istringstream upper("EMAIL,first_name\na@example.com,Ann\n");
  auto r = RowReader::open(upper, ImportFormat::csv);
  Read got = read_next(*r);
  REQUIRE(got.row.field("email"));
  CHECK(*got.row.field("email") == "a@example.com");
  std::istringstream none("mail,first_name\na@example.com,Ann\nb@example.com,Bob\n");
  auto n = RowReader::open(none, ImportFormat::csv);
  got = read_next(*n);
  CHECK(got.fatal);
  CHECK(got.error == "the header row has no 'email' column (the recipient's address)");
  CHECK_FALSE(n->next());  // one error for the file, not one per row
}

TEST_CASE(
    "a key quoted in an error is printable: an import file cannot send the terminal an escape") {
  std::istringstream in("{\"evil\\u001b[2J\\nkey\":[1]}\n{\"dup\\r\":1,\"dup\\r\":2}\n");
  auto reader = RowReader::open(in, ImportFormat::jsonl);
  auto first = reader->next();
  REQUIRE(first);
  REQUIRE_FALSE(*first);
  CHECK(first->error().message ==
        "field 'evil?[2J?key' holds an object or array; only text, numbers and true/false are "
        "allowed");
  auto second = reader->next();
  REQUIRE(second);
  REQUIRE_FALSE(*second);
  CHECK(second->error().message == "key 'dup?' is given twice (a row names each key once)");
}
