#include "csv_reader.h"

#include <doctest/doctest.h>

#include <sstream>

using namespace bulkmail;

namespace {
std::vector<CsvReader::Record> read_all(const std::string& text) {
  std::istringstream in(text);
  CsvReader r(in);
  std::vector<CsvReader::Record> out;
  CsvReader::Record rec;
  while (r.next(rec)) out.push_back(rec);
  return out;
}
}  // namespace

TEST_CASE("plain, quoted and CRLF records") {
  auto recs = read_all(
      "\xEF\xBB\xBF"
      "email,name\r\na@example.com,\"Doe, Jane\"\r\n\"b@example.com\",\"say \"\"hi\"\"\"\r\n");
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].fields == std::vector<std::string>{"email", "name"});
  CHECK(recs[1].fields == std::vector<std::string>{"a@example.com", "Doe, Jane"});
  CHECK(recs[2].fields == std::vector<std::string>{"b@example.com", "say \"hi\""});
  CHECK(recs[2].line == 3);
}

TEST_CASE("a quoted field may span lines - line numbers stay true") {
  auto recs = read_all("email,note\na@example.com,\"two\nlines\"\nb@example.com,x\n");
  REQUIRE(recs.size() == 3);
  CHECK(recs[1].fields[1] == "two\nlines");
  CHECK(recs[1].line == 2);
  CHECK(recs[2].line == 4);
}

TEST_CASE("blank lines are skipped - the last line needs no line end - empty fields stay") {
  auto recs = read_all("a,b\n\n\nc,\n,d");
  REQUIRE(recs.size() == 3);
  CHECK(recs[1].fields == std::vector<std::string>{"c", ""});
  CHECK(recs[1].line == 4);
  CHECK(recs[2].fields == std::vector<std::string>{"", "d"});
}

TEST_CASE("malformed records are reported and reading resumes on the next line") {
  auto recs = read_all("a,b\nx\"y,z\n\"q\"junk,1\nok,2\n\"never closed,3\nlost,4\n");
  REQUIRE(recs.size() == 5);
  CHECK(recs[1].error.find("quote inside an unquoted field 1") != std::string::npos);
  CHECK(recs[1].line == 2);
  CHECK(recs[2].error.find("text after a closing quote") != std::string::npos);
  CHECK(recs[3].error.empty());
  CHECK(recs[3].fields == std::vector<std::string>{"ok", "2"});
  CHECK(recs[3].line == 4);
  CHECK(recs[4].error.find("opened on line 5 is never closed") != std::string::npos);
}

TEST_CASE("csv_escape quotes only when needed") {
  CHECK(csv_escape("plain") == "plain");
  CHECK(csv_escape("a,b") == "\"a,b\"");
  CHECK(csv_escape("say \"hi\"") == "\"say \"\"hi\"\"\"");
  auto recs = read_all("x\n" + csv_escape("multi\nline, \"quoted\"") + "\n");
  REQUIRE(recs.size() == 2);
  CHECK(recs[1].fields[0] == "multi\nline, \"quoted\"");
}
