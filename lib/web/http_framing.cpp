#include "web/http_framing.h"

#include <algorithm>
#include <vector>

#include "base/text.h"

namespace bulkmail {

namespace http = boost::beast::http;

std::optional<FramingRefusal> framing_problem(const FramedRequest& req) {
  auto bad = [](std::string text) {
    return FramingRefusal{http::status::bad_request, std::move(text)};
  };
  std::size_t hosts = req.count(http::field::host);
  if (hosts > 1) return bad("more than one Host header\n");
  if (hosts == 0 && req.version() >= 11) return bad("an HTTP/1.1 request needs a Host header\n");
  // Two media types for one body: which one a route reads must not depend on their order.
  if (req.count(http::field::content_type) > 1) return bad("more than one Content-Type\n");
  std::size_t lengths = req.count(http::field::content_length);
  if (lengths > 1 || sv(req[http::field::content_length]).find(',') != std::string_view::npos)
    return bad("more than one Content-Length\n");
  if (req.count(http::field::transfer_encoding) == 0) return std::nullopt;
  if (lengths > 0) return bad("both Content-Length and Transfer-Encoding\n");
  if (req.version() < 11) return bad("Transfer-Encoding in an HTTP/1.0 request\n");
  // Every Transfer-Encoding line, as one list in order.
  std::vector<std::string> codings;
  auto [begin, end] = req.equal_range(http::field::transfer_encoding);
  for (auto field = begin; field != end; ++field) {
    std::string_view list = sv(field->value());
    while (!list.empty()) {
      std::size_t comma = list.find(',');
      std::string_view coding = trim(list.substr(0, comma));
      if (!coding.empty()) codings.push_back(to_lower_ascii(coding));
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  if (codings.empty() || codings.back() != "chunked")
    return bad("the last Transfer-Encoding must be chunked\n");
  if (std::count(codings.begin(), codings.end(), "chunked") > 1)
    return bad("chunked more than once in Transfer-Encoding\n");
  if (codings.size() > 1)
    return FramingRefusal{http::status::not_implemented,
                          "transfer coding " + codings.front() + " is not supported\n"};
  return std::nullopt;
}

}  // namespace bulkmail
