#include "intake/csv_reader.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// One record as the tests look at it: where it starts, and its fields or why it is malformed.
struct Read {
  std::vector<std::string> fields;
  std::size_t line = 0;
  std::string error;  // empty: the record was read
};

std::vector<Read> read_all(const std::string& text) {
  std::istringstream in(text);
  CsvReader r(in);
  std::vector<Read> out;
  bool lines_agree = true;  // a record's own line and the reader's line() for it
  while (auto rec = r.next()) {
    if (*rec) {
      lines_agree = lines_agree && (*rec)->line == r.line();
      out.push_back({std::move((*rec)->fields), r.line(), ""});
    } else {
      out.push_back({{}, r.line(), rec->error().message});
    }
  }
  CHECK(lines_agree);
  CHECK(r.read_status().ok());
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
  auto recs = read_all("a,b\nx\"y,z\n\"q\"junk,1\nok,2\n\"never closed,3\nnot lost,4\n");
  REQUIRE(recs.size() == 6);
  CHECK(recs[1].error.find("quote inside an unquoted field 1") != std::string::npos);
  CHECK(recs[1].line == 2);
  CHECK(recs[2].error.find("text after a closing quote") != std::string::npos);
  CHECK(recs[3].error.empty());
  CHECK(recs[3].fields == std::vector<std::string>{"ok", "2"});
  CHECK(recs[3].line == 4);
  CHECK(recs[4].error ==
        "a quoted field opened on line 5 is never closed; reading resumes on line 6");
  CHECK(recs[4].line == 5);
  // The line the open quote ran over is read again.
  CHECK(recs[5].error.empty());
  CHECK(recs[5].fields == std::vector<std::string>{"not lost", "4"});
  CHECK(recs[5].line == 6);
}

TEST_CASE("csv_escape quotes only when needed") {
  CHECK(csv_escape("plain") == "plain");
  CHECK(csv_escape("a,b") == "\"a,b\"");
  CHECK(csv_escape("say \"hi\"") == "\"say \"\"hi\"\"\"");
  auto recs = read_all("x\n" + csv_escape("multi\nline, \"quoted\"") + "\n");
  REQUIRE(recs.size() == 2);
  CHECK(recs[1].fields[0] == "multi\nline, \"quoted\"");
}

namespace {
// A header and `rows` records, the one on line `bad_line` with an opening quote never closed.
std::string rows_with_unclosed_quote(int rows, int bad_line) {
  std::string text = "email,name\n";
  for (int i = 0; i < rows; ++i) {
    std::string n = std::to_string(i);
    text += "user" + n + "@example.com," + (i + 2 == bad_line ? "\"Name " : "Name ") + n + "\n";
  }
  return text;
}

void check_every_line_read_once(const std::vector<Read>& recs, int rows, int bad_line) {
  REQUIRE(recs.size() == static_cast<std::size_t>(rows) + 1);  // the header, then one per row
  for (std::size_t i = 0; i < recs.size(); ++i) {
    CAPTURE(i);
    REQUIRE(recs[i].line == i + 1);
    if (recs[i].line == static_cast<std::size_t>(bad_line)) {
      CHECK_FALSE(recs[i].error.empty());
    } else {
      CHECK(recs[i].error.empty());
      CHECK(recs[i].fields.size() == 2);
    }
  }
}
}  // namespace

TEST_CASE("an unclosed quote costs its own record: the lines it ran over are read again") {
  // To the end of the file.
  auto recs = read_all(rows_with_unclosed_quote(2000, 3));
  check_every_line_read_once(recs, 2000, 3);
  CHECK(recs[2].error ==
        "a quoted field opened on line 3 is never closed; reading resumes on line 4");
  CHECK(recs[2000].fields == std::vector<std::string>{"user1999@example.com", "Name 1999"});

  // Past the 1 MiB a record may hold: 60,000 rows of about 30 bytes.
  recs = read_all(rows_with_unclosed_quote(60000, 3));
  check_every_line_read_once(recs, 60000, 3);
  CHECK(recs[2].error ==
        "a quoted field opened on line 3 runs past 1 MiB (is its closing quote missing?); reading "
        "resumes on line 4");
}

TEST_CASE("a record found bad on a later line gives back the lines after its first") {
  // Line 2's quote closes on line 3, followed by text: line 3 is then read on its own.
  auto recs = read_all("a,b\nx,\"one\ntwo\"junk\nok,3\n");
  REQUIRE(recs.size() == 4);
  CHECK(recs[1].line == 2);
  CHECK(recs[1].error == "text after a closing quote in field 2; reading resumes on line 3");
  CHECK(recs[2].line == 3);
  CHECK(recs[2].error.find("quote inside an unquoted field 1") != std::string::npos);
  CHECK(recs[3].line == 4);
  CHECK(recs[3].fields == std::vector<std::string>{"ok", "3"});
}

TEST_CASE("a stream that cannot be read ends the records with the reason") {
  TempDir dir;
  std::ifstream in(dir.path());  // a folder opens, but reading it fails
  CsvReader r(in);
  CHECK_FALSE(r.next());
  REQUIRE_FALSE(r.read_status().ok());
  CHECK(r.read_status().error().message == "Is a directory");
}

TEST_CASE("a broken byte-order mark costs the first line only") {
  auto recs = read_all(
      "\xEF"
      "x,y\na,b\n");
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].line == 1);
  CHECK(recs[0].error == "the file starts with a broken byte-order mark");
  CHECK(recs[1].line == 2);
  CHECK(recs[1].fields == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a lone carriage return ends a record only at the end - blank lines may be CR alone") {
  auto recs = read_all("a,b\rc\nok,1\r\n\r\r\nlast,2\r");
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].line == 1);
  CHECK(recs[0].error == "a lone carriage return ends field 2");
  CHECK(recs[1].line == 2);
  CHECK(recs[1].fields == std::vector<std::string>{"ok", "1"});
  CHECK(recs[2].line == 4);
  CHECK(recs[2].error.empty());
  CHECK(recs[2].fields == std::vector<std::string>{"last", "2"});
}

TEST_CASE("an unquoted record over 1 MiB is malformed - the next line is read") {
  std::string big(CsvReader::kMaxRecordBytes + 1, 'a');
  std::string half(CsvReader::kMaxRecordBytes / 2 + 1, 'b');  // the bytes of every field count
  auto recs = read_all(big + ",x\n" + half + "," + half + "\nok,1\n");
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].error == "the record is longer than 1 MiB");
  CHECK(recs[1].line == 2);
  CHECK(recs[1].error == "the record is longer than 1 MiB");
  CHECK(recs[2].line == 3);
  CHECK(recs[2].fields == std::vector<std::string>{"ok", "1"});
}
