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

TEST_CASE("header values refuse line breaks and control characters") {
  CHECK(header_value_problem("Example Telecom, Inc.") == "");
  CHECK(header_value_problem("tab\tis fine") == "");
  CHECK(header_value_problem("a\r\nBcc: x").find("line break") != std::string::npos);
  CHECK(header_value_problem("a\nb").find("line break") != std::string::npos);
  CHECK(header_value_problem("a\rb").find("line break") != std::string::npos);
  CHECK(header_value_problem(std::string("a\0b", 3)).find("control") != std::string::npos);
  CHECK(header_value_problem("a\x7f").find("control") != std::string::npos);
  CHECK(header_value_problem("\xff").find("UTF-8") != std::string::npos);
}

TEST_CASE("trim and lower-case") {
  CHECK(trim("  a b \r\n") == "a b");
  CHECK(trim(" \t ") == "");
  CHECK(to_lower_ascii("AbC-Ü") == "abc-Ü");
}
