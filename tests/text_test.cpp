#include "base/text.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("UTF-8 validity") {
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("Grüße, 東京, 😀"));
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // a surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  CHECK_FALSE(is_valid_utf8("\x80"));              // a lone continuation byte
}

namespace {
// The check's error text, or "ok" when it passes.
std::string outcome(const Result<void>& r) { return r ? "ok" : r.error().message; }
}  // namespace

TEST_CASE("header values refuse line breaks and control characters") {
  CHECK(outcome(check_header_value("Example Telecom, Inc.")) == "ok");
  CHECK(outcome(check_header_value("tab\tis fine")) == "ok");
  CHECK(outcome(check_header_value("Grüße")) == "ok");
  CHECK(outcome(check_header_value("")) == "ok");
  CHECK(outcome(check_header_value("a\r\nBcc: x")) ==
        "holds a line break (CR or LF), which could inject a mail header");
  CHECK(outcome(check_header_value("a\nb")).find("line break") != std::string::npos);
  CHECK(outcome(check_header_value("a\rb")).find("line break") != std::string::npos);
  CHECK(outcome(check_header_value(std::string("a\0b", 3))) == "holds a control character");
  CHECK(outcome(check_header_value("a\x7f")) == "holds a control character");
  CHECK(outcome(check_header_value("\xff")) == "is not valid UTF-8");
}

TEST_CASE("variable text may hold line breaks - not a lone CR or a control character") {
  CHECK(outcome(check_text_value("one line")) == "ok");
  CHECK(outcome(check_text_value("para one\n\npara two\r\nthree\tcols")) == "ok");
  CHECK(outcome(check_text_value("")) == "ok");
  CHECK(outcome(check_text_value("one\rtwo")) ==
        "holds a carriage return that does not end a line");
  CHECK(outcome(check_text_value("ends in CR\r")) ==
        "holds a carriage return that does not end a line");
  CHECK(outcome(check_text_value("a\x01"
                                 "b")) == "holds a control character");
  CHECK(outcome(check_text_value("a\x7f")) == "holds a control character");
  CHECK(outcome(check_text_value("\xC0\xAF")) == "is not valid UTF-8");
}

TEST_CASE("trim and lower-case") {
  CHECK(trim("  a b \r\n") == "a b");
  CHECK(trim(" \t ") == "");
  CHECK(to_lower_ascii("AbC-Ü") == "abc-Ü");
}

TEST_CASE("the length of a UTF-8 sequence, and hex digits, for every reader that decodes text") {
  struct Row {
    const char* s;
    std::size_t len;
  };
  for (Row r :
       {Row{"\xC3\xB6", 2}, Row{"\xE2\x82\xAC", 3}, Row{"\xF0\x9F\x98\x80", 4}, Row{"a", 0},
        Row{"\xC3", 0}, Row{"\xC0\xAF", 0} /* overlong */, Row{"\xED\xA0\x80", 0} /* surrogate */,
        Row{"\xF4\x90\x80\x80", 0} /* > U+10FFFF */, Row{"\xE2\x28\xA1", 0}, Row{"\xFF", 0}}) {
    CAPTURE(r.s);
    CHECK(utf8_sequence_length(r.s, 0) == r.len);
  }
  CHECK(utf8_sequence_length("x\xC3\xB6", 1) == 2);
  CHECK(hex_digit_value('0') == 0);
  CHECK(hex_digit_value('9') == 9);
  CHECK(hex_digit_value('a') == 10);
  CHECK(hex_digit_value('F') == 15);
  for (char c : {'g', 'G', ' ', '/', ':', '@', '`', '\0'}) CHECK(hex_digit_value(c) == -1);
}

TEST_CASE("a stranger's bytes become one printable line") {
  CHECK(printable_line("ok\ttab") == "ok\ttab");
  CHECK(printable_line("a\r\nb\x1b[31mc\x7f") == "a??b?[31mc?");
  CHECK(printable_line("a\nb", ' ') == "a b");
  std::string out = "kept: ";
  append_printable_line(out, std::string_view("x\0z", 3));  // NUL is a control character too
  CHECK(out == "kept: x?z");
}
