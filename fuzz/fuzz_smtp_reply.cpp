// What a relay answered, judged: the relay is a stranger too, and answers whatever it answers.
//
// Input, a line each: libcurl's result code, CURLINFO_RESPONSE_CODE, libcurl's error text; the
// rest is the server's last reply line.
//
// Properties: only a transfer libcurl says worked, with a 2xx, is `sent`; a suppressing bounce is
// a 5xx to RCPT TO and nothing else; a code recorded is a reply code (200-599) and 421 drops the
// connection; what is recorded is one printable line of bounded length (it goes into the
// history, and into logs).
#include <curl/curl.h>

#include <charconv>
#include <string>

#include "base/text.h"
#include "delivery/smtp_reply.h"
#include "fuzz_check.h"

using namespace bulkmail;

namespace {

template <typename T>
T number(std::string_view s) {
  T v{};
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view in = fuzz::text(data, size);
  AttemptResult a;
  a.curl_code = number<int>(fuzz::take(in));
  a.response_code = number<long>(fuzz::take(in));
  a.error_text = std::string(fuzz::take(in));
  a.reached_transfer = !in.empty() && in.front() != '!';
  a.last_reply = std::string(in);
  Classification c = classify_attempt(a);
  if (c.verdict == Verdict::sent) {
    FUZZ_CHECK(a.curl_code == CURLE_OK);
    FUZZ_CHECK(a.response_code >= 200 && a.response_code < 300);
  }
  if (c.verdict == Verdict::bounced) {
    FUZZ_CHECK(c.code >= 500 && c.code < 600);
    FUZZ_CHECK(a.error_text.find("RCPT failed:") != std::string::npos);
    FUZZ_CHECK(c.bounce_class == BounceClass::hard);
  }
  FUZZ_CHECK(c.code == 0 || (c.code >= 200 && c.code < 600));
  if (c.code == 421) FUZZ_CHECK(c.drop_connection);
  FUZZ_CHECK(!has_control_chars(c.reply));
  FUZZ_CHECK(c.reply.size() <= 2 * kMaxReplyLine);  // a code and libcurl's text, each bounded
  return 0;
}
