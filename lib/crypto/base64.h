// Base64 (RFC 4648) through OpenSSL: the standard alphabet for DKIM, and the URL-safe alphabet
// without padding for unsubscribe tokens.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bulkmail {

std::string base64_encode(std::string_view bytes);
// Decodes standard base64, ignoring ASCII white space (as in DKIM tags and key files).
std::optional<std::string> base64_decode(std::string_view text);

std::string base64url_encode(std::string_view bytes);  // no padding
// Strict: only the URL-safe alphabet, no padding, no white space, and only the canonical
// spelling (unused bits of the last character zero).
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace bulkmail
