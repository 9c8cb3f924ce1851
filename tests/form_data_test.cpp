#include "form_data.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("percent decoding") {
  CHECK(*percent_decode("a%20b+c", true) == "a b c");
  CHECK(*percent_decode("a%20b+c", false) == "a b+c");
  CHECK(*percent_decode("%4a%4A", false) == "JJ");
  CHECK(*percent_decode("", true) == "");
  for (const char* bad : {"%", "%4", "%zz", "a%g0", "%%"}) {
    CAPTURE(bad);
    auto r = percent_decode(bad, true);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "a '%' is not followed by two hex digits");
  }
}

TEST_CASE("urlencoded bodies and queries") {
  auto one_click = parse_urlencoded("List-Unsubscribe=One-Click");
  REQUIRE(one_click.ok());
  CHECK(*form_value(*one_click, "List-Unsubscribe") == "One-Click");

  auto f = parse_urlencoded("scope=all&&x&name=J%C3%BCrgen+M&scope=category");
  REQUIRE(f.ok());
  REQUIRE(f->size() == 4);
  CHECK(*form_value(*f, "scope") == "all");  // the first one counts
  CHECK(*form_value(*f, "x") == "");
  CHECK(*form_value(*f, "name") == "J\xC3\xBCrgen M");
  CHECK_FALSE(form_value(*f, "missing"));
  CHECK(parse_urlencoded("")->empty());
  CHECK_FALSE(parse_urlencoded("a=%2").ok());
}

TEST_CASE("multipart form bodies") {
  std::string body =
      "preamble\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"List-Unsubscribe\"\r\n"
      "\r\n"
      "One-Click\r\n"
      "--XyZ\r\n"
      "content-disposition: form-data; name=\"note\"\r\n"
      "Content-Type: text/plain\r\n"
      "\r\n"
      "two\r\nlines\r\n"
      "--XyZ--\r\n";
  auto f = parse_form("multipart/form-data; boundary=XyZ", body);
  REQUIRE(f.ok());
  REQUIRE(f->size() == 2);
  CHECK(*form_value(*f, "List-Unsubscribe") == "One-Click");
  CHECK(*form_value(*f, "note") == "two\r\nlines");

  auto quoted = parse_form("Multipart/Form-Data; boundary=\"XyZ\"", body);
  REQUIRE(quoted.ok());
  CHECK(quoted->size() == 2);
}

TEST_CASE("malformed multipart bodies are refused with a reason") {
  struct Case {
    const char* content_type;
    const char* body;
    const char* error;
  };
  const Case cases[] = {
      {"multipart/form-data", "x", "multipart/form-data without a boundary"},
      {"multipart/form-data; boundary=b", "no boundary here",
       "the multipart body has no opening boundary"},
      {"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
       "the multipart body is not closed"},
      {"multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--",
       "a multipart part has no field name"},
      {"multipart/form-data; boundary=b",
       "--b\r\nContent-Disposition: form-data; name=f; filename=x.txt\r\n\r\nv\r\n--b--",
       "file uploads are not accepted"},
      {"multipart/form-data; boundary=b", "--bX", "a multipart boundary line is malformed"},
      {"text/plain", "List-Unsubscribe=One-Click", "unsupported content type text/plain"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    auto r = parse_form(c.content_type, c.body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == c.error);
  }
}

TEST_CASE("an absent content type is read as urlencoded") {
  auto f = parse_form("", "List-Unsubscribe=One-Click");
  REQUIRE(f.ok());
  CHECK(*form_value(*f, "List-Unsubscribe") == "One-Click");
}
