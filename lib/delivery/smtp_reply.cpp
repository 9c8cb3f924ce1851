#include "delivery/smtp_reply.h"

#include <curl/curl.h>

#include <cstdlib>

#include "base/text.h"
#include "bounce/bounce_class.h"

namespace bulkmail {
namespace {

// The reply code libcurl names in its error text ("RCPT failed: 550", "... response: 421").
int code_in(const std::string& text, const char* marker) {
  auto pos = text.find(marker);
  if (pos == std::string::npos) return 0;
  pos += std::char_traits<char>::length(marker);
  while (pos < text.size() && text[pos] == ' ') ++pos;
  int code = std::atoi(text.c_str() + pos);
  return code >= 200 && code <= 599 ? code : 0;
}

std::string reply_for(int code, const AttemptResult& a) {
  if (a.last_reply.rfind(std::to_string(code), 0) == 0) return reply_line(a.last_reply);
  return std::to_string(code) + (a.error_text.empty() ? "" : " (" + reply_line(a.error_text) + ")");
}

// A 5xx, judged as a bounce report's recipient is (bounce_class.h), so that a refusal means the
// same whether the relay gave it during the transaction or mailed it back later. To RCPT TO: a
// dead address (or one the server refused without saying why: the server that holds the mailbox
// gave that answer itself, which no report by mail can prove) fails and is suppressed; a policy or
// reputation refusal (5.7.x, a blocklist) or a full mailbox fails without suppressing anyone. To
// MAIL FROM or DATA: the relay refused the message, not the address.
void refused(Classification& c, bool to_rcpt) {
  BounceClass k = classify_bounce("", c.code, c.reply, "failed");
  if (to_rcpt && (k == BounceClass::hard || k == BounceClass::unknown)) {
    c.verdict = Verdict::bounced;
    c.bounce_class = BounceClass::hard;
    return;
  }
  c.verdict = Verdict::rejected;
  c.bounce_class = k == BounceClass::hard ? BounceClass::unknown : k;
}

}  // namespace

Classification classify_attempt(const AttemptResult& a) {
  Classification c;
  if (a.curl_code == CURLE_OK) {
    if (a.response_code >= 200 && a.response_code < 300) {
      c.verdict = Verdict::sent;
      c.code = static_cast<int>(a.response_code);
      c.reply = reply_for(c.code, a);
    } else {
      c.verdict = Verdict::deferred;
      // Only a reply code is recorded as one: libcurl's 0 (no reply) is none.
      if (a.response_code >= 200 && a.response_code <= 599)
        c.code = static_cast<int>(a.response_code);
      c.reply = "no 2xx reply to the message";
      c.drop_connection = true;
    }
    return c;
  }
  // libcurl names the command that failed and its code; only then is the code this message's.
  int rcpt = code_in(a.error_text, "RCPT failed:");
  int mail = code_in(a.error_text, "MAIL failed:");
  int other = code_in(a.error_text, "response:");  // "Got unexpected smtp-server response: 421"
  int data_cmd = code_in(a.error_text, "DATA failed:");
  // The reply to the end of the message: libcurl 7.88 returns CURLE_WEIRD_SERVER_REPLY (older
  // versions CURLE_RECV_ERROR) with no error text. A dropped connection always comes with error
  // text, so a stale code from an earlier message cannot be mistaken for this reply.
  bool after_data = (a.curl_code == CURLE_WEIRD_SERVER_REPLY || a.curl_code == CURLE_RECV_ERROR) &&
                    a.error_text.empty() && a.response_code >= 400 && a.response_code < 600;
  int code = rcpt         ? rcpt
             : mail       ? mail
             : data_cmd   ? data_cmd
             : other      ? other
             : after_data ? static_cast<int>(a.response_code)
                          : 0;
  if (code) {
    c.code = code;
    c.reply = reply_for(code, a);
    if (code == 421) {
      c.verdict = Verdict::deferred;
      c.drop_connection = true;
      c.relay_trouble = true;
    } else if (code >= 500) {
      refused(c, rcpt != 0);
    } else {
      c.verdict = Verdict::deferred;
      c.recipient_only = rcpt != 0 && !throttles_the_sender(c.reply);
    }
    return c;
  }
  // No reply we can trust: the connection failed, timed out or was dropped.
  c.verdict = Verdict::deferred;
  c.drop_connection = true;
  c.reply = reply_line(a.error_text.empty() ? curl_easy_strerror(static_cast<CURLcode>(a.curl_code))
                                            : a.error_text);
  if (!a.reached_transfer) {
    // Failed while setting up the connection: the relay's trouble, not this message's.
    c.relay_trouble = true;
    return c;
  }
  switch (a.curl_code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_LOGIN_DENIED:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
      c.relay_trouble = true;
      break;
    case CURLE_OPERATION_TIMEDOUT:
      // A timeout before the greeting is the relay's trouble; one mid-message is this message's.
      c.relay_trouble = a.response_code == 0;
      break;
    default:
      break;
  }
  return c;
}

void assign_reply_line(std::string& out, std::string_view received) {
  while (!received.empty() && (received.back() == '\n' || received.back() == '\r'))
    received.remove_suffix(1);
  out.clear();
  append_printable_line(out, received.substr(0, kMaxReplyLine));
}

std::string reply_line(std::string_view received) {
  std::string line;
  assign_reply_line(line, received);
  return line;
}

}  // namespace bulkmail
