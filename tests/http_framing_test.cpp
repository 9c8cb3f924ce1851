#include "web/http_framing.h"

#include <doctest/doctest.h>

using namespace bulkmail;
namespace http = boost::beast::http;

namespace {

FramedRequest request(int version,
                      std::initializer_list<std::pair<http::field, const char*>> fields) {
  FramedRequest req{http::verb::post, "/u/x", version};
  for (const auto& [name, value] : fields) req.insert(name, value);
  return req;
}

}  // namespace

TEST_CASE("a request framed one way only passes") {
  CHECK_FALSE(framing_problem(request(11, {{http::field::host, "h"}})));
  CHECK_FALSE(framing_problem(request(10, {})));  // HTTP/1.0 needs no Host
  CHECK_FALSE(framing_problem(
      request(11, {{http::field::host, "h"}, {http::field::transfer_encoding, "chunked"}})));
  CHECK_FALSE(
      framing_problem(request(11, {{http::field::host, "h"}, {http::field::content_length, "5"}})));
}

TEST_CASE("ambiguous framing is refused with 400, a coding before chunked with 501") {
  auto status = [](const FramedRequest& r) {
    auto p = framing_problem(r);
    REQUIRE(p);
    CHECK_FALSE(p->text.empty());
    return p->status;
  };
  using F = http::field;
  CHECK(status(request(11, {})) == http::status::bad_request);  // no Host
  CHECK(status(request(11, {{F::host, "a"}, {F::host, "b"}})) == http::status::bad_request);
  CHECK(status(request(11, {{F::host, "h"}, {F::content_type, "a/b"}, {F::content_type, "c/d"}})) ==
        http::status::bad_request);
  CHECK(status(request(11, {{F::host, "h"}, {F::content_length, "5"}, {F::content_length, "5"}})) ==
        http::status::bad_request);
  CHECK(status(request(11, {{F::host, "h"}, {F::content_length, "5, 5"}})) ==
        http::status::bad_request);
  CHECK(status(request(
            11, {{F::host, "h"}, {F::transfer_encoding, "chunked"}, {F::content_length, "5"}})) ==
        http::status::bad_request);
  CHECK(status(request(10, {{F::transfer_encoding, "chunked"}})) == http::status::bad_request);
  CHECK(status(request(11, {{F::host, "h"}, {F::transfer_encoding, "gzip"}})) ==
        http::status::bad_request);
  CHECK(status(request(11, {{F::host, "h"},
                            {F::transfer_encoding, "chunked"},
                            {F::transfer_encoding, "chunked"}})) == http::status::bad_request);
  CHECK(status(request(11, {{F::host, "h"}, {F::transfer_encoding, "gzip, chunked"}})) ==
        http::status::not_implemented);
  // The codings are one list across lines, read in order.
  CHECK(status(request(11, {{F::host, "h"},
                            {F::transfer_encoding, "gzip"},
                            {F::transfer_encoding, "chunked"}})) == http::status::not_implemented);
}
