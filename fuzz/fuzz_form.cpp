// Form bodies and query strings, as the one-click POST (RFC 8058) and the confirmation page send
// them: application/x-www-form-urlencoded and multipart/form-data.
//
// Input: the first line is the Content-Type (its boundary too), the rest the body.
//
// Properties: any body gives fields or an error, never a crash or a read past its end; fields
// written back out urlencoded read back the same (the
// one-click body and the page's form read alike whichever way a client encodes them).
#include <string>

#include "fuzz_check.h"
#include "web/form_data.h"

using namespace bulkmail;

namespace {

std::string encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void check_urlencoded_round_trip(const FormFields& fields) {
  std::string body;
  for (const auto& [name, value] : fields) {
    if (!body.empty()) body += '&';
    body += encode(name) + "=" + encode(value);
  }
  auto back = parse_urlencoded(body);
  FUZZ_CHECK(back);
  FUZZ_CHECK(back.value() == fields);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view in = fuzz::text(data, size);
  std::string_view content_type = fuzz::take(in);
  std::string_view body = in;
  media_type(content_type);
  if (auto fields = parse_form(content_type, body)) check_urlencoded_round_trip(fields.value());
  if (auto fields = parse_urlencoded(body)) check_urlencoded_round_trip(fields.value());
  if (auto fields = parse_multipart(body, content_type))
    check_urlencoded_round_trip(fields.value());
  // Decoding what was encoded gives it back.
  auto decoded = percent_decode(encode(body), false);
  FUZZ_CHECK(decoded && decoded.value() == body);
  return 0;
}
