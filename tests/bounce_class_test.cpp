#include "bounce/bounce_class.h"

#include <doctest/doctest.h>

#include <string>

using namespace bulkmail;

namespace {
constexpr auto hard = BounceClass::hard;
constexpr auto soft = BounceClass::soft;
constexpr auto policy = BounceClass::policy;
constexpr auto unknown = BounceClass::unknown;
}  // namespace

TEST_CASE("classification: the enhanced status code first, then the SMTP code, then the text") {
  struct Row {
    const char* status;
    int smtp_code;
    const char* diagnostic;
    const char* action;
    BounceClass expected;
  };
  const Row rows[] = {
      // Hard by status: 5.1.1-5.1.4, 5.1.6, 5.1.10, 5.2.1, and RFC 7293's changed owners.
      {"5.1.1", 550, "550 5.1.1 <a@example.com>: Recipient address rejected", "failed", hard},
      {"5.1.2", 550, "550 5.1.2 bad destination system address", "failed", hard},
      {"5.1.3", 501, "501 5.1.3 bad destination mailbox address syntax", "failed", hard},
      {"5.1.4", 550, "550 5.1.4 destination mailbox address ambiguous", "failed", hard},
      {"5.1.6", 550, "550 5.1.6 mailbox has moved", "failed", hard},
      {"5.1.10", 550, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", "failed", hard},
      {"5.2.1", 550, "550 5.2.1 mailbox disabled", "failed", hard},
      {"5.7.17", 550, "550 5.7.17 mailbox owner has changed", "failed", hard},
      {"5.7.18", 550, "550 5.7.18 domain owner has changed", "failed", hard},
      {"5.1.1 (bad destination mailbox address)", 0, "", "failed", hard},
      {" 5.1.1 ", 0, "", "", hard},
      // The status wins over words that say otherwise.
      {"5.1.1", 550, "mailbox full", "failed", hard},
      {"5.7.1", 550, "550 5.7.1 user unknown", "failed", hard},
      {"5.7.1", 550, "550 5.7.1 No such user here", "failed", hard},
      {"5.7.1", 550, "550 5.7.1 user unknown; listed at zen.spamhaus.org", "failed", policy},
      {"5.4.1", 550, "550 5.4.1 Recipient address rejected: Access denied", "failed", hard},
      {"", 550, "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", "failed",
       hard},
      {"5.4.1", 550, "550 5.4.1 Relay access denied", "failed", policy},
      {"", 550, "550 Sender domain does not exist", "failed", unknown},
      {"", 553, "553 Sender address rejected: Domain not found", "failed", unknown},
      {"", 552, "552 Message rejected: spam", "failed", policy},
      {"", 552, "552 Blocked using bl.spamcop.net", "failed", policy},
      {"", 552, "552 Message size exceeds policy limit", "failed", soft},
      {"5.2.2", 550, "550 5.2.2 no such user", "failed", soft},
      // Soft: any 4.x.x, mailbox full, message too large, mail system full.
      {"4.4.1", 0, "connect to mx.example.net[192.0.2.30]:25: Connection timed out", "failed",
       soft},
      {"4.2.2", 452, "452 4.2.2 The email account that you tried to reach is over quota", "", soft},
      {"4.7.1", 451, "451 4.7.1 Greylisted", "failed", soft},
      {"4.0.0", 0, "550 5.1.1 user unknown", "failed", soft},  // a generic 4 is not made a 5
      {"5.2.2", 552, "552 5.2.2 Mailbox full", "failed", soft},
      {"5.2.3", 552, "552 5.2.3 Message exceeds maximum size", "failed", soft},
      {"5.3.4", 552, "552 5.3.4 Message too big for system", "failed", soft},
      {"5.3.1", 452, "452 5.3.1 mail system full", "failed", soft},
      // Policy: most 5.7.x, and the sender's own address refused.
      {"5.7.1", 554, "554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org",
       "failed", policy},
      {"5.7.0", 550, "550 5.7.0 Local policy violation", "failed", policy},
      {"5.7.26", 550, "550 5.7.26 unauthenticated email is not accepted (DMARC)", "failed", policy},
      {"5.7.13", 525, "525 5.7.13 user account disabled", "failed", policy},
      {"5.7.606", 550, "550 5.7.606 Access denied, banned sending IP", "failed", policy},
      {"5.1.7", 553, "553 5.1.7 bad sender's mailbox address syntax", "failed", policy},
      {"5.1.8", 553, "553 5.1.8 sender domain does not exist", "failed", policy},
      // Action first: delayed is soft whatever the code; successes are not failures.
      {"5.1.1", 550, "550 5.1.1 user unknown", "delayed", soft},
      {"4.4.7", 0, "", "Delayed", soft},
      {"2.0.0", 250, "250 2.0.0 Ok: queued", "delivered", unknown},
      {"2.1.5", 250, "250 2.1.5 Ok", "relayed", unknown},
      {"2.0.0", 0, "", "expanded", unknown},
      {"2.0.0", 250, "250 ok", "", unknown},
      // A generic or missing status is refined by the code in the diagnostic (Exim: 5.0.0).
      {"5.0.0", 550, "550 5.1.1 <gone@example.net>: Recipient address rejected", "failed", hard},
      {"5.0.0", 550, "550 5.7.1 rejected by policy", "failed", policy},
      {"", 552, "552 5.2.2 over quota", "failed", soft},
      {"", 0, "Sorry, no mailbox here by that name. (#5.1.1)", "failed", hard},
      {"", 0, "host mx.example.org [192.0.2.80]: 550 5.1.1 <lost@example.org>: unknown", "failed",
       hard},
      {"nonsense", 0, "550 5.1.1 user unknown", "failed", hard},
      // The SMTP code when the status says too little.
      {"5.0.0", 452, "452 Too many recipients", "failed", soft},
      {"", 421, "421 Service not available", "failed", soft},
      {"5.0.0", 552, "552 Requested mail action aborted: exceeded storage allocation", "failed",
       soft},
      {"", 552, "", "failed", soft},
      // Then the text: blocklists before dead-address phrases before full before refusals.
      {"5.0.0", 550, "550 Mailbox unavailable: listed at zen.spamhaus.org", "failed", policy},
      {"", 554, "554 Your IP is blacklisted", "failed", policy},
      {"", 554, "554 rejected due to poor reputation of sending IP", "failed", policy},
      {"", 550, "550 Message rejected: RBL check failed", "failed", policy},
      {"5.0.0", 550, "550 User unknown", "failed", hard},
      {"5.0.0", 550, "550 No such user here", "failed", hard},
      {"", 550, "550 Requested action not taken: mailbox unavailable", "failed", hard},
      {"", 550, "550-5.1.1 The email account that you tried to reach does not exist. Please try",
       "", hard},
      {"", 550, "550 sorry, that domain isn't in my list; the address does not exist", "failed",
       hard},
      {"", 550, "550 Account disabled", "failed", hard},
      {"", 554, "554 delivery error: dd This user doesn't have a example.net account", "failed",
       hard},
      {"", 554, "554 delivery error: dd This mailbox is disabled (554.30)", "failed", hard},
      {"", 550, "550 Recipient address rejected: RecipNotFound", "failed", hard},
      {"", 0, "unrouteable address", "failed", hard},
      {"5.4.4", 0, "Host or domain name not found. Name service error for name=example.invalid",
       "failed", hard},
      {"", 0, "mailbox is full: retry timeout exceeded", "failed", soft},
      {"", 550, "550 Message too large", "failed", soft},
      {"", 550, "550 User is over quota", "failed", soft},
      {"5.0.0", 550, "550 Message blocked", "failed", policy},
      {"", 550, "550 Rejected for policy reasons", "failed", policy},
      {"", 554, "554 Message refused: looks like spam", "failed", policy},
      {"", 550, "550 Relay access denied", "failed", policy},
      // Whole words only: "rbl" inside "herblore" and "blocked" inside "unblocked" do not count.
      {"", 550, "550 herblore failed", "failed", unknown},
      {"", 550, "550 unblocked later", "failed", unknown},
      // Nothing recognisable: unknown, never a guess.
      {"", 550, "550 Requested action not taken", "failed", unknown},
      {"5.0.0", 550, "", "failed", unknown},
      {"", 0, "", "failed", unknown},
      {"", 0, "", "", unknown},
      {"5.5.0", 500, "500 syntax error", "failed", unknown},
      {"5.4.6", 554, "554 5.4.6 routing loop detected", "failed", unknown},
  };
  for (const Row& r : rows) {
    CAPTURE(r.status);
    CAPTURE(r.smtp_code);
    CAPTURE(r.diagnostic);
    CAPTURE(r.action);
    CHECK(classify_bounce(r.status, r.smtp_code, r.diagnostic, r.action) == r.expected);
  }
}

TEST_CASE("enhanced status codes are found in text, never in IP addresses or version numbers") {
  struct Row {
    const char* text;
    const char* expected;
  };
  const Row rows[] = {
      {"550 5.1.1 <a@example.com>: user unknown", "5.1.1"},
      {"550-5.1.1 The email account that you tried to reach does not exist", "5.1.1"},
      {"Sorry, no mailbox here by that name. (#5.1.1)", "5.1.1"},
      {"550 5.1.10 RESOLVER.ADR.RecipientNotFound", "5.1.10"},
      {"451 4.7.1 Greylisted", "4.7.1"},
      {"5.2.2", "5.2.2"},
      {"host mx.example.org[192.0.2.25] said: 550 5.1.1 nope", "5.1.1"},
      {"connect to mx.example.net[192.0.2.30]:25: Connection timed out", ""},
      {"10.5.1.1 is an address", ""},
      {"5.1.1.4 is a longer run", ""},
      {"version 5.1.1a", ""},
      {"3.1.1 is no class", ""},
      {"5.1234.1", ""},
      {"5..1", ""},
      {"", ""},
      {"5.", ""},
      {"5.1.", ""},
      {"mx5.1.1.example.net", ""},
  };
  for (const Row& r : rows) {
    CAPTURE(r.text);
    CHECK(enhanced_status_in(r.text) == r.expected);
  }
}

TEST_CASE("SMTP reply codes: at the start, else free-standing") {
  struct Row {
    const char* text;
    int expected;
  };
  const Row rows[] = {
      {"550 5.1.1 user unknown", 550},
      {"550-5.1.1 The email account", 550},
      {"  452 4.2.2 over quota", 452},
      {"554: delivery error: dd This user doesn't have an account", 554},
      {"host mx.example.org[192.0.2.25] said: 550 5.1.1 nope", 550},
      {"host mx.example.org [192.0.2.80]: 421 try later", 421},
      {"connect to mx.example.net[192.0.2.30]:25: Connection timed out", 0},
      {"Sorry, no mailbox here by that name. (#5.1.1)", 0},
      {"ID 5501234 failed", 0},
      {"error 650 is no reply code", 0},
      {"560 is no reply code either", 0},
      {"250", 250},
      {"", 0},
      {"55", 0},
  };
  for (const Row& r : rows) {
    CAPTURE(r.text);
    CHECK(smtp_code_in(r.text) == r.expected);
  }
}

TEST_CASE("class names") {
  CHECK(to_string(BounceClass::hard) == "hard");
  CHECK(to_string(BounceClass::soft) == "soft");
  CHECK(to_string(BounceClass::policy) == "policy");
  CHECK(to_string(BounceClass::unknown) == "unknown");
}
