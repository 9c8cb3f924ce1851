// What one failed recipient in a bounce means for the address: dead (hard), full or not yet
// (soft), or refused because of the sender rather than the address (policy). Judged from the RFC
// 3463 enhanced status code first, then the SMTP reply code, then the diagnostic text, as issue 15
// asks. Pure: the table of codes and phrases is tested directly (tests/bounce_class_test.cpp).
#pragma once

#include <string>
#include <string_view>

namespace bulkmail {

enum class BounceClass {
  hard,     // the address does not exist or is disabled: suppress it for all mail
  soft,     // 4.x.x, delayed, mailbox full, message too large: count it, suppress after several
  policy,   // blocklists, reputation, content and other 5.7.x refusals: the sender's problem
  unknown,  // not a failure (delivered, relayed), or nothing recognisable: act on nothing
};

// "hard", "soft", "policy", "unknown".
std::string_view to_string(BounceClass c);

// Classifies one recipient of a report.
//  - status: the Status field ("5.1.1", comments after it are ignored), "" when there is none.
//  - smtp_code: the remote server's reply code (550), 0 when there is none.
//  - diagnostic: the server's text ("550 5.1.1 <a@example.com>: user unknown"), may be "".
//  - action: the DSN Action ("failed", "delayed", ...), "" when there is none.
// In order:
//  1. Action delayed is soft; delivered, relayed and expanded are unknown (nothing failed).
//  2. The status code. A missing or generic one (X.0.0, as Exim always sends) is refined by an
//     enhanced code of the same class found in the diagnostic. 2.x.x is unknown, 4.x.x soft.
//     Hard: 5.1.1-5.1.4, 5.1.6, 5.1.10, 5.2.1, 5.7.17 and 5.7.18 (the mailbox or domain changed
//     owner, RFC 7293). Soft: 5.2.2 (full), 5.2.3 and 5.3.4 (too large), 5.3.1 (system full).
//     Policy: every other 5.7.x, and 5.1.7 / 5.1.8 (the sender's address is refused), except
//     that a 5.7.x (not 5.7.13, the submitter's own account) whose text has a dead-address
//     phrase and no blocklist name is hard ("550 5.7.1 user unknown"). 5.4.1 with "recipient
//     address rejected" (Office 365: not in the tenant) is hard. Any other 5.x.x says too little
//     and falls through.
//  3. The SMTP code: 4xx is soft. 552 (storage exceeded) is soft unless the text names a
//     blocklist or, lacking full / too-large phrases, a refusal ("552 rejected: spam"): policy.
//     Others fall through.
//  4. The text, as whole words, case-insensitively: blocklist names first ("spamhaus",
//     "blacklisted", "listed at", "reputation"), then dead-address phrases ("user unknown",
//     "no such user", "does not exist", "account disabled"; not when the word "sender" comes before
//     the phrase: "Sender domain does not exist"), then full or too large ("mailbox
//     full", "over quota", "message too large"), then general refusals ("blocked", "policy",
//     "spam", "access denied").
// Anything else is unknown: a failure that says too little suppresses nobody.
BounceClass classify_bounce(std::string_view status, int smtp_code, std::string_view diagnostic,
                            std::string_view action);

// A 4xx to RCPT TO that speaks for the receiving server rather than the one recipient (the
// sender should slow down for the whole domain): an enhanced status about the system (4.3.x),
// the network or routing (4.4.x), too many recipients (4.5.3) or a policy other than greylisting
// (4.7.x but 4.7.1); or words of a rate or a limit, whatever the code, as Postfix's "450 4.7.1
// Error: too many recipients from ..." has. Greylisting ("451 4.7.1 Try again later", "450 4.2.0
// Greylisted") and a busy mailbox (4.2.x) are about the recipient.
bool throttles_the_sender(std::string_view reply);

// The first RFC 3463 enhanced status code in `text`: "5.1.1" in "550 5.1.1 <a@example.com>: user
// unknown" or in qmail's "(#5.1.1)"; "" when there is none. The class must be 2, 4 or 5, the
// other two numbers 1-3 digits. Part of a longer dotted run (an IP address such as 192.0.2.5 or a
// version number) is never taken for one.
std::string enhanced_status_in(std::string_view text);

// The SMTP reply code `text` begins with ("550-5.1.1 ..." or "550 ..."), else the first
// free-standing three-digit code 2yz, 4yz or 5yz (y 0-5) followed by a space, a hyphen or the
// end ("host mx.example.com said: 550 5.1.1 ..."); 0 when there is none. Digits inside an IP
// address or a longer number are never taken for one.
int smtp_code_in(std::string_view text);

}  // namespace bulkmail
