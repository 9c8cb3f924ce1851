// Form bodies and query strings the webhook reads: application/x-www-form-urlencoded (RFC 8058's
// one-click body, the confirmation page's form, URL queries) and multipart/form-data (which
// RFC 8058 also allows for the one-click POST).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace bulkmail {

// Name/value pairs in the order they came.
using FormFields = std::vector<std::pair<std::string, std::string>>;

// %XX escapes decoded; `plus_is_space` for form encoding. A bad escape is an error.
Result<std::string> percent_decode(std::string_view s, bool plus_is_space);

// "a=1&b=two+words"; a name without '=' gets an empty value; empty pieces are skipped.
Result<FormFields> parse_urlencoded(std::string_view body);

// RFC 7578: each part's Content-Disposition names its field. Parts with a filename are refused:
// nothing here takes files. Any body, however malformed, gives fields or an error, never an
// exception or a read past its end.
Result<FormFields> parse_multipart(std::string_view body, std::string_view boundary);

// By the Content-Type's media type (its boundary parameter for multipart). An empty content
// type is read as urlencoded: some clients send the one-click body without one.
Result<FormFields> parse_form(std::string_view content_type, std::string_view body);

// A Content-Type's media type, lower-cased and without parameters (RFC 9110 8.3.1: the type is
// case-insensitive): "Application/JSON; charset=UTF-8" gives "application/json".
std::string media_type(std::string_view content_type);

// The first value of `name`, if present.
std::optional<std::string_view> form_value(const FormFields& fields, std::string_view name);

// The value of `name` in a URL's query ("a=1&scope=all"); nullopt when absent or the query cannot
// be read.
std::optional<std::string> query_value(std::string_view query, std::string_view name);

}  // namespace bulkmail
