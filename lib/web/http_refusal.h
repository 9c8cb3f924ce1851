// The answers bulkmail's HTTP server gives on its own, before a route sees the request or in
// place of a route's answer: what /metrics counts as bulkmail_http_refused_total{reason}. Under
// an attack on the webhook (slowloris, huge headers, garbage, a flood of connections) these are
// where it shows; bulkmail_webhook_requests_total counts only the requests a route answered.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <utility>

namespace bulkmail {

enum class HttpRefusal {
  malformed,           // 400: not HTTP, or framing RFC 9112 calls ambiguous (http_framing.h)
  unsupported_coding,  // 501: a Transfer-Encoding coding before chunked
  header_too_large,    // 431: a request header past 8 KiB (HttpLimits)
  body_too_large,      // 413: a body past 64 KiB
  read_timeout,        // 408: a request begun and not finished within the read timeout
  server_full,         // 503: every connection place taken (webhook.max_connections)
  client_full,         // 503: the client's places taken (webhook.max_connections_per_client)
  no_answer,           // 503: the route did not answer within the answer timeout
};

// Every refusal with its label value, in the order above.
inline constexpr std::array<std::pair<HttpRefusal, std::string_view>, 8> kHttpRefusals{{
    {HttpRefusal::malformed, "malformed"},
    {HttpRefusal::unsupported_coding, "unsupported-coding"},
    {HttpRefusal::header_too_large, "header-too-large"},
    {HttpRefusal::body_too_large, "body-too-large"},
    {HttpRefusal::read_timeout, "read-timeout"},
    {HttpRefusal::server_full, "server-full"},
    {HttpRefusal::client_full, "client-full"},
    {HttpRefusal::no_answer, "no-answer"},
}};

// kHttpRefusals[i] is the refusal whose value is i.
constexpr bool refusals_in_order() {
  for (std::size_t i = 0; i < kHttpRefusals.size(); ++i) {
    if (static_cast<std::size_t>(kHttpRefusals[i].first) != i) return false;
  }
  return true;
}
static_assert(refusals_in_order());

}  // namespace bulkmail
