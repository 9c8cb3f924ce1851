// What one delivery attempt means, judged from libcurl's result code first and the SMTP reply
// second: after a dropped connection CURLINFO_RESPONSE_CODE can still hold a stale 250, so a
// reply code is trusted only when libcurl says the transfer worked or names the failed command.
#pragma once

#include <string>

#include "bounce/bounce_class.h"

namespace bulkmail {

struct AttemptResult {
  int curl_code = 0;       // CURLcode
  long response_code = 0;  // CURLINFO_RESPONSE_CODE
  std::string error_text;  // CURLOPT_ERRORBUFFER, e.g. "RCPT failed: 550"
  std::string last_reply;  // the server's last reply line, e.g. "550 5.1.1 No such user"
  // False when the attempt failed before the connection was ready for this message (connect,
  // greeting, EHLO, STARTTLS, AUTH): nothing of the message was tried.
  bool reached_transfer = true;
};

enum class Verdict {
  sent,      // 2xx to the end of DATA
  deferred,  // 4xx, timeout, dropped connection: try again later
  // 5xx to RCPT TO that says the address is dead, or gives no reason: fail and suppress it for all
  // mail.
  bounced,
  // 5xx to RCPT TO for a policy or reputation reason (5.7.x, a blocklist) or a full mailbox, or
  // 5xx to MAIL FROM or DATA: fail, no suppression.
  rejected,
};

struct Classification {
  Verdict verdict = Verdict::deferred;
  int code = 0;                  // the SMTP reply code, 0 when there was none
  std::string reply;             // what to record: the reply line, or what went wrong
  bool drop_connection = false;  // 421, or the connection is in an unknown state
  bool relay_trouble = false;    // not about this message: the relay is down or refusing us
  // For a 5xx, what the refusal says (classify_bounce): hard for `bounced`; policy (counted in the
  // campaign's block rate), soft or unknown for `rejected`. unknown otherwise.
  BounceClass bounce_class = BounceClass::unknown;
  // A 4xx to RCPT TO other than 421 about this recipient (greylisting, a busy mailbox:
  // throttles_the_sender says which), so the domain does not slow down for it. 421, a 4xx to
  // MAIL FROM or DATA, and a recipient's 4xx that speaks of a rate or the server's state do.
  bool recipient_only = false;
};

Classification classify_attempt(const AttemptResult& attempt);

// One line as libcurl hands it over (a reply line, an error text) made fit to record: without its
// line end, at most kMaxReplyLine bytes, and every other control character shown as '?', so that a
// relay's reply can never break a line of the history, a log or a terminal.
std::string reply_line(std::string_view received);
// As reply_line, into `out` (replacing what it held, keeping its capacity): for libcurl's header
// callback, which sees every reply line of every message.
void assign_reply_line(std::string& out, std::string_view received);
inline constexpr std::size_t kMaxReplyLine = 512;

}  // namespace bulkmail
