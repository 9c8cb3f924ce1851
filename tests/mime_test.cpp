#include "compose/mime.h"

#include <doctest/doctest.h>

#include <sstream>

using namespace bulkmail;

namespace {
std::size_t longest_line(const std::string& s) {
  std::size_t longest = 0, start = 0;
  while (start < s.size()) {
    auto e = s.find("\r\n", start);
    if (e == std::string::npos) e = s.size();
    longest = std::max(longest, e - start);
    start = e + 2;
  }
  return longest;
}
bool only_crlf(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("quoted-printable") {
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"plain", "plain\r\n"},
      {"a=b", "a=3Db\r\n"},
      {"Zoë", "Zo=C3=AB\r\n"},
      {"line one\nline two\n", "line one\r\nline two\r\n"},
      {"crlf\r\nkept", "crlf\r\nkept\r\n"},
      {"trailing space \nx", "trailing space=20\r\nx\r\n"},
      {".\nlone dot", "=2E\r\nlone dot\r\n"},
      {"From here on", "=46rom here on\r\n"},
      {"", "\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    CHECK(quoted_printable(c.in) == c.out);
  }
  std::string long_line(3000, 'x');
  std::string qp = quoted_printable(long_line + "\n" + std::string(200, '\xC3'));
  CHECK(longest_line(qp) <= 76);
  CHECK(only_crlf(qp));
}

TEST_CASE("unstructured headers fold ASCII and encode the rest") {
  CHECK(*unstructured_header("Subject", "Hello") == "Subject: Hello\r\n");
  auto folded =
      *unstructured_header("Subject", std::string(40, 'a') + " " + std::string(40, 'b') + " end");
  CHECK(folded == "Subject: " + std::string(40, 'a') + "\r\n " + std::string(40, 'b') + " end\r\n");
  CHECK(*unstructured_header("Subject", "Grüße") == "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n");
  // Long non-ASCII text becomes several encoded-words, never split inside a character.
  auto many = *unstructured_header("Subject", "ééééééééééééééééééééééééééééééééééééééééé");
  CHECK(longest_line(many) <= 76);
  CHECK(many.find("\r\n =?UTF-8?B?") != std::string::npos);
  // "=?" in plain text would read as an encoded-word, so such text is encoded.
  CHECK(unstructured_header("Subject", "a =?x?= b")->find("=?UTF-8?B?") == 9);
}

TEST_CASE("no value can add or split a header") {
  for (const char* evil :
       {"Hi\r\nBcc: victim@example.org", "Hi\nBcc: x", "Hi\rBcc: x", "Hi\x01x", "Hi\x7fx"}) {
    CAPTURE(evil);
    CHECK_FALSE(unstructured_header("Subject", evil).ok());
    CHECK_FALSE(structured_header("To", evil).ok());
    CHECK_FALSE(mailbox_text(evil, "a@example.com").ok());
  }
  CHECK_FALSE(unstructured_header("Subject", std::string("Hi\0Bcc: x", 9)).ok());
}

TEST_CASE("mailboxes: atoms plain, specials quoted, non-ASCII encoded") {
  CHECK(*mailbox_text("Example Telecom", "a@example.com") == "Example Telecom <a@example.com>");
  CHECK(*mailbox_text("Example Telecom, Inc.", "a@example.com") ==
        "\"Example Telecom, Inc.\" <a@example.com>");
  CHECK(*mailbox_text("Say \"hi\"", "a@example.com") == "\"Say \\\"hi\\\"\" <a@example.com>");
  CHECK(*mailbox_text("Télécom", "a@example.com") == "=?UTF-8?B?VMOpbMOpY29t?= <a@example.com>");
  CHECK(*mailbox_text("", "a@example.com") == "a@example.com");
}

TEST_CASE("structured headers fold at spaces and refuse lines over 998 octets") {
  auto lu = *structured_header("List-Unsubscribe",
                               "<https://mail.example.com/unsubscribe/" + std::string(80, 'T') +
                                   ">, <mailto:u@example.com?subject=unsubscribe>");
  CHECK(lu.find(">,\r\n <mailto:") != std::string::npos);
  CHECK_FALSE(structured_header("X", std::string(1200, 'a')).ok());
}

TEST_CASE("RFC 5322 dates") {
  CHECK(rfc5322_date(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(rfc5322_date(1'795'000'000'123) == "Wed, 18 Nov 2026 11:06:40 +0000");
}

TEST_CASE("a date cache appends the date of each message's own second") {
  DateCache dates;
  std::string out = "Date: ";
  dates.append(out, 1'795'000'000'123);
  CHECK(out == "Date: Wed, 18 Nov 2026 11:06:40 +0000");
  const UnixMillis times[] = {1'795'000'000'999, 1'795'000'001'000, 1'795'000'000'000, 0,
                              1'795'000'001'500};
  for (UnixMillis t : times) {
    CAPTURE(t);
    std::string line;
    dates.append(line, t);
    CHECK(line == rfc5322_date(t));
  }
}

namespace {
// An independent decoder for the round trip: soft breaks vanish, =XX becomes the byte.
std::string qp_decode(const std::string& qp) {
  std::string out;
  for (std::size_t i = 0; i < qp.size(); ++i) {
    if (qp[i] == '=' && qp.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;
    } else if (qp[i] == '=') {
      out += static_cast<char>(std::stoi(qp.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (qp[i] == '\r') {
      out += '\n';
      ++i;
    } else {
      out += qp[i];
    }
  }
  return out;
}
}  // namespace

TEST_CASE("quoted-printable round-trips random text and keeps every rule") {
  unsigned seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7FFF; };
  const std::string alphabet = "abc =.\tF\xC3\xA9\n";
  for (int round = 0; round < 500; ++round) {
    std::string text;
    std::size_t len = next() % 400;
    for (std::size_t i = 0; i < len; ++i) text += alphabet[next() % alphabet.size()];
    if (next() % 3 == 0) text += "From here";
    if (!text.empty() && text.back() != '\n') text += '\n';
    std::string qp = quoted_printable(text);
    CAPTURE(text);
    CHECK(qp_decode(qp) == (text.empty() ? "\n" : text));
    CHECK(longest_line(qp) <= 76);
    CHECK(only_crlf(qp));
    for (std::size_t p = 0; p < qp.size(); p = qp.find("\r\n", p) + 2) {
      CHECK(qp[p] != '.');                    // no line starts with a dot
      CHECK(qp.compare(p, 5, "From ") != 0);  // nor with "From "
      std::size_t e = qp.find("\r\n", p);
      if (e > p) CHECK((qp[e - 1] != ' ' && qp[e - 1] != '\t'));  // nor ends in white space
      if (e == std::string::npos || e + 2 >= qp.size()) break;
    }
  }
}

TEST_CASE("structured headers fold before a space only, never at a separator alone") {
  std::string ids = std::string(50, 'a') + ";" + std::string(50, 'b') + "," + std::string(10, 'c');
  CHECK(*structured_header("X-Ids", ids) == "X-Ids: " + ids + "\r\n");  // no space: one line
  auto folded = *structured_header("X-Ids", std::string(50, 'a') + "; " + std::string(50, 'b'));
  CHECK(folded == "X-Ids: " + std::string(50, 'a') + ";\r\n " + std::string(50, 'b') + "\r\n");
}
