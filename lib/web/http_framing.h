// RFC 9112 framing, where Beast is lenient: it reads a body only for a final "chunked" and takes
// any other Transfer-Encoding as no body at all, so the body's bytes would be read as the next
// request; and it accepts Content-Length after a Transfer-Encoding that is not chunked, and equal
// Content-Lengths twice. Each of those is refused, as is an HTTP/1.1 request without exactly one
// Host (RFC 9112 3.2), and one with two Content-Types. The HTTP server asks once a request's
// header is read, before its body; the webhook's fuzz target asks the same.
#pragma once

#include <utility>  // before Boost: Boost 1.74 uses std::exchange without including it

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace bulkmail {

// Boost 1.74's Beast hands out boost::string_view; bulkmail's code reads std::string_view.
inline std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

using FramedRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Why a request's header alone means it is not served: 400, or 501 for a transfer coding before
// chunked. The text is the answer's body.
struct FramingRefusal {
  boost::beast::http::status status;
  std::string text;
};

// nullopt when the header frames the request unambiguously.
std::optional<FramingRefusal> framing_problem(const FramedRequest& req);

}  // namespace bulkmail
