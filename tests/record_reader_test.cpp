#include "record_reader.h"

#include <doctest/doctest.h>

#include <sstream>

using namespace bulkmail;

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
