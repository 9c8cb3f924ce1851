#include "bounce/report.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/read_file.h"
#include "base/text.h"
#include "test_config.h"

using namespace bulkmail;

namespace {

std::string fixture(const std::string& name) {
  auto text = read_file(test::source_dir() + "/tests/data/bounces/" + name);
  REQUIRE_MESSAGE(text.ok(), name);
  return *text;
}

std::string to_lf(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out += s[i];
  }
  return out;
}

std::string to_crlf(const std::string& s) {
  std::string out;
  for (char c : to_lf(s)) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// Every string of a report is one line of valid UTF-8.
void check_clean(const std::string& s) {
  CAPTURE(s);
  CHECK(is_valid_utf8(s));
  CHECK_FALSE(has_control_chars(s));
}

void check_sane(const Report& r, const ReportLimits& limits = {}) {
  CHECK(r.recipients.size() <= limits.max_recipients);
  for (const ReportRecipient& x : r.recipients) {
    for (const std::string* s :
         {&x.address, &x.original_recipient, &x.action, &x.status, &x.diagnostic, &x.remote_mta})
      check_clean(*s);
  }
  for (const std::string* s :
       {&r.reporting_mta, &r.feedback_type, &r.user_agent, &r.version, &r.original_mail_from,
        &r.arrival_date, &r.source_ip, &r.original.message_id, &r.original.list_id,
        &r.original.return_path, &r.original.to, &r.original.from, &r.original.subject})
    check_clean(*s);
  for (const auto& list : {r.original_rcpt_to, r.reported_domains, r.original.list_unsubscribe})
    for (const std::string& s : list) check_clean(s);
}

struct ExpectedRecipient {
  const char* address;
  const char* action;
  const char* status;
  int smtp_code;
  BounceClass bounce_class;
};

struct Expected {
  const char* file;
  const char* exercises;
  bool is_message;  // false: refused as not a mail message at all (EX_DATAERR)
  ReportKind kind;
  std::vector<ExpectedRecipient> recipients;
  const char* message_id;  // of the returned message; "" when none was returned
};

constexpr auto hard = BounceClass::hard;
constexpr auto soft = BounceClass::soft;
constexpr auto policy = BounceClass::policy;

// The fixtures of tests/data/bounces/ and what each must yield. Each is also read with its line
// ends converted (CRLF to LF, LF to CRLF), and must yield the same.
const std::vector<Expected>& expectations() {
  static const std::vector<Expected> table = {
      {"postfix-hard.eml",
       "Postfix DSN, 5.1.1, the message returned whole; Auto-Submitted: auto-replied",
       true,
       ReportKind::bounce,
       {{"nobody@example.org", "failed", "5.1.1", 550, hard}},
       "<20240115100000.a1b2c3d4e5f6@mail.example.com>"},
      {"postfix-lf-only.eml",
       "the same DSN with LF line ends only",
       true,
       ReportKind::bounce,
       {{"nobody@example.org", "failed", "5.1.1", 550, hard}},
       "<20240115100000.a1b2c3d4e5f6@mail.example.com>"},
      {"postfix-delayed.eml",
       "Postfix delay warning: Action delayed, 4.4.1, X-Postfix diagnostic, headers returned",
       true,
       ReportKind::delay,
       {{"slow@example.net", "delayed", "4.4.1", 0, soft}},
       "<20240115060000.0f1e2d3c4b5a@mail.example.com>"},
      {"exim-dsn.eml",
       "Exim DSN: Action before Final-Recipient, Status 5.0.0 replaced by the diagnostic's 5.1.1",
       true,
       ReportKind::bounce,
       {{"gone@example.net", "failed", "5.1.1", 550, hard}},
       "<20240116085959.0a0b0c0d0e0f@mail.example.com>"},
      {"sendmail-dsn.eml",
       "Sendmail DSN: RFC822;/DNS;/SMTP; in capitals, Original-Recipient first, untyped text part",
       true,
       ReportKind::bounce,
       {{"olduser@example.org", "failed", "5.1.1", 550, hard}},
       "<20240116100035.1a2b3c4d5e6f@mail.example.com>"},
      {"gmail-dsn.eml",
       "Gmail-style DSN: nested related/alternative parts, a folded multi-line 550-5.1.1 reply",
       true,
       ReportKind::bounce,
       {{"noone@example.com", "failed", "5.1.1", 550, hard}},
       "<20240117090203.aa11bb22cc33@mail.example.com>"},
      {"office365-dsn.eml",
       "Exchange Online NDR: two recipients, 5.1.10 and 5.1.1, a base64 message/rfc822",
       true,
       ReportKind::bounce,
       {{"alice@example.com", "failed", "5.1.10", 550, hard},
        {"bob@example.com", "failed", "5.1.1", 550, hard}},
       "<20240118115959.abcdef012345@mail.example.com>"},
      {"global-dsn.eml",
       "RFC 6533 message/global-delivery-status, a UTF-8 address, a message/global original",
       true,
       ReportKind::bounce,
       {{"j\xC3\xB6rg@example.com", "failed", "5.1.1", 550, hard}},
       "<20240119080000.55aa66bb77cc@mail.example.com>"},
      {"policy-blocklist.eml",
       "5.7.1 blocked using a blocklist: policy, not the address",
       true,
       ReportKind::bounce,
       {{"reader@example.net", "failed", "5.7.1", 554, policy}},
       "<20240120090000.99aa88bb77cc@mail.example.com>"},
      {"mailbox-full.eml",
       "5.2.2 / 552 mailbox full, Latin-1 bytes, no blank line after the per-message fields",
       true,
       ReportKind::bounce,
       {{"full@example.org", "failed", "5.2.2", 552, soft}},
       ""},
      {"arf-abuse.eml",
       "RFC 5965 B.2 abuse report, the original with a bracketless Message-ID",
       true,
       ReportKind::complaint,
       {},
       "<8787KJKJ3K4J3K4J3K4J3.mail@example.net>"},
      {"arf-redacted.eml",
       "ARF whose Original-Rcpt-To is redacted (RFC 6590), text/rfc822-headers",
       true,
       ReportKind::complaint,
       {},
       "<20240119075959.1122aabb3344@mail.example.com>"},
      {"arf-not-spam.eml",
       "ARF not-spam: a complaint report that suppresses nobody",
       true,
       ReportKind::complaint,
       {},
       "<20240120110000.fa11fa22fa33@mail.example.com>"},
      {"qmail.eml",
       "qmail-send notice: a local (#5.1.1) and a remote failure; a trap in the quoted message",
       true,
       ReportKind::bounce,
       {{"nobody@example.net", "failed", "5.1.1", 0, hard},
        {"remote@example.org", "failed", "5.1.1", 550, hard}},
       "<20240120095959.9988ffee7766@mail.example.com>"},
      {"yahoo-legacy.eml",
       "Yahoo's qmail-based notice: \"554:\" and no enhanced code",
       true,
       ReportKind::bounce,
       {{"closed@example.net", "failed", "", 554, hard}},
       "<20240121075959.aa00bb11cc22@mail.example.com>"},
      {"exim-text.eml",
       "old Exim plain-text bounce: two addresses, auto-replied, a trap in the quoted message",
       true,
       ReportKind::bounce,
       {{"lost@example.org", "failed", "5.1.1", 550, hard},
        {"full@example.com", "failed", "", 0, soft}},
       "<20240121105959.5544332211aa@mail.example.com>"},
      {"exim-delay.eml",
       "Exim delay warning in plain text",
       true,
       ReportKind::delay,
       {{"later@example.org", "delayed", "4.7.1", 451, soft}},
       ""},
      {"sendmail-text.eml",
       "Sendmail plain-text bounce: the transcript repeats the address and adds nothing",
       true,
       ReportKind::bounce,
       {{"former@example.net", "failed", "5.1.1", 550, hard}},
       "<20240122075959.66778899aabb@mail.example.com>"},
      {"postfix-text-only.eml",
       "Postfix's notice without its MIME parts: \"expanded from\", a folded reason",
       true,
       ReportKind::bounce,
       {{"member@example.com", "failed", "5.2.1", 550, hard}},
       ""},
      {"postfix-text-copy.eml",
       "Postfix text-only notice with the message appended: its \"<victim@...>:\" line is no "
       "failure",
       true,
       ReportKind::bounce,
       {{"real@example.org", "failed", "5.1.1", 550, hard}},
       ""},
      {"qmail-enclosed-copy.eml",
       "qmail notice whose copy follows \"--- Enclosed is a copy\": the quoted failure is not read",
       true,
       ReportKind::bounce,
       {{"real@example.org", "failed", "5.1.1", 0, hard}},
       ""},
      {"sendmail-in-forward.eml",
       "a person's forward of a Sendmail failure list, without Sendmail's introduction",
       true,
       ReportKind::unknown,
       {},
       ""},
      {"arf-rcpt-list.eml",
       "ARF whose Original-Rcpt-To is a list of two bracketed addresses",
       true,
       ReportKind::complaint,
       {},
       "<1.abc@example.com>"},
      {"arf-rcpt-list2.eml",
       "ARF whose Original-Rcpt-To lists a plain and a redacted address",
       true,
       ReportKind::complaint,
       {},
       "<1.abc@example.com>"},
      {"arf-rcpt-name.eml",
       "ARF whose Original-Rcpt-To has a display name",
       true,
       ReportKind::complaint,
       {},
       "<1.abc@example.com>"},
      {"arf-rcpt-group.eml",
       "ARF whose Original-Rcpt-To is \"undisclosed-recipients:;\"",
       true,
       ReportKind::complaint,
       {},
       "<1.abc@example.com>"},
      {"dsn-two-addr.eml",
       "a Final-Recipient of two addresses is dropped, not read as one",
       true,
       ReportKind::unknown,
       {},
       "<1.abc@example.com>"},
      {"dsn-xtext.eml",
       "a utf-8 Final-Recipient whose xtext decodes to a second '@' and a line break is dropped",
       true,
       ReportKind::unknown,
       {},
       "<1.abc@example.com>"},
      {"dsn-nul-address.eml",
       "a Final-Recipient with a NUL in it is dropped, not read as \"a b@example.org\"",
       true,
       ReportKind::unknown,
       {},
       "<1.abc@example.com>"},
      {"autoreply-rfc3834.eml",
       "RFC 3834 Auto-Submitted: auto-replied vacation notice",
       true,
       ReportKind::auto_reply,
       {},
       ""},
      {"autoreply-x-autoreply.eml",
       "out-of-office with X-Autoreply and no Auto-Submitted",
       true,
       ReportKind::auto_reply,
       {},
       ""},
      {"garbage-truncated-mime.eml",
       "a DSN cut off inside its delivery-status part: what was there is read",
       true,
       ReportKind::bounce,
       {{"cut@example.org", "failed", "5.1.1", 550, hard}},
       ""},
      {"garbage-no-status-part.eml",
       "a multipart/report without its delivery-status part and with a text that says nothing",
       true,
       ReportKind::unknown,
       {},
       "<20240124090000.ffeeddccbbaa@mail.example.com>"},
      {"garbage-binary.eml", "binary junk", false, ReportKind::unknown, {}, ""},
      {"garbage-empty.eml", "an empty input", false, ReportKind::unknown, {}, ""},
      {"garbage-nested.eml",
       "300 levels of message/rfc822: cut at max_content_types",
       true,
       ReportKind::unknown,
       {},
       ""},
      {"garbage-nested-multipart.eml",
       "300 levels of multipart/mixed: cut, and walked only to max_depth",
       true,
       ReportKind::unknown,
       {},
       ""},
  };
  return table;
}

// Checks one fixture against its row, going on to the next row on a mismatch.
void check_expected(const Expected& e, const std::string& input) {
  auto parsed = parse_report(input);
  CHECK(parsed.ok() == e.is_message);
  if (!parsed.ok()) {
    CHECK_FALSE(parsed.error().message.empty());
    return;
  }
  if (!e.is_message) return;
  const Report& r = *parsed;
  check_sane(r);
  CHECK(to_string(r.kind) == to_string(e.kind));
  CHECK(r.recipients.size() == e.recipients.size());
  for (std::size_t i = 0; i < std::min(r.recipients.size(), e.recipients.size()); ++i) {
    CAPTURE(i);
    const ReportRecipient& got = r.recipients[i];
    const ExpectedRecipient& want = e.recipients[i];
    CHECK(got.address == want.address);
    CHECK(got.action == want.action);
    CHECK(got.status == want.status);
    CHECK(got.smtp_code == want.smtp_code);
    CHECK(to_string(got.bounce_class) == to_string(want.bounce_class));
  }
  CHECK(r.original.message_id == e.message_id);
  if (*e.message_id) CHECK(r.original.found);
}

}  // namespace

TEST_CASE("every fixture yields what its row says, with either line end") {
  for (const Expected& e : expectations()) {
    CAPTURE(e.file);
    CAPTURE(e.exercises);
    std::string data = fixture(e.file);
    const std::pair<const char*, std::string> forms[] = {
        {"as stored", data}, {"LF", to_lf(data)}, {"CRLF", to_crlf(data)}};
    for (const auto& form : forms) {
      CAPTURE(form.first);
      check_expected(e, form.second);
    }
  }
}

TEST_CASE("a Postfix DSN: every field") {
  auto r = parse_report(fixture("postfix-hard.eml"));
  REQUIRE(r.ok());
  CHECK(r->reporting_mta == "mail.example.com");
  CHECK(r->arrival_date == "Mon, 15 Jan 2024 10:00:00 +0000 (UTC)");
  CHECK(r->note.empty());
  REQUIRE(r->recipients.size() == 1);
  const ReportRecipient& x = r->recipients[0];
  CHECK(x.original_recipient == "nobody@example.org");
  CHECK(x.remote_mta == "mx.example.org");
  CHECK(x.diagnostic ==
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual "
        "mailbox table");
  const OriginalMessage& o = r->original;
  CHECK(o.found);
  CHECK(o.list_unsubscribe ==
        std::vector<std::string>{"https://mail.example.com/unsubscribe?t=abc123",
                                 "mailto:unsubscribe@mail.example.com?subject=unsubscribe"});
  CHECK(o.list_id == "customer-update.mail.example.com");
  CHECK(o.return_path == "b-3f9x2k@bounces.mail.example.com");
  CHECK(o.to == "nobody@example.org");
  CHECK(o.from == "Example Telecom <updates@mail.example.com>");
  CHECK(o.subject == "Your January update");
  // A complaint's fields stay empty.
  CHECK(r->feedback_type.empty());
  CHECK(r->original_rcpt_to.empty());
}

TEST_CASE("a delayed DSN returns the headers only") {
  auto r = parse_report(fixture("postfix-delayed.eml"));
  REQUIRE(r.ok());
  REQUIRE(r->recipients.size() == 1);
  CHECK(r->recipients[0].diagnostic ==
        "connect to mx.example.net[192.0.2.30]:25: Connection timed out");
  CHECK(r->original.return_path == "b-7hq2m1@bounces.mail.example.com");
  CHECK(r->original.list_unsubscribe ==
        std::vector<std::string>{"https://mail.example.com/unsubscribe?t=d3l4y"});
}

TEST_CASE("Gmail's folded reply is one line, its Remote-MTA keeps its comment") {
  auto r = parse_report(fixture("gmail-dsn.eml"));
  REQUIRE(r.ok());
  CHECK(r->reporting_mta == "mx-out.example.net");
  REQUIRE(r->recipients.size() == 1);
  const ReportRecipient& x = r->recipients[0];
  CHECK(x.diagnostic.starts_with(
      "550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 "
      "double-checking"));
  CHECK(x.diagnostic.ends_with("d1-20020a05 - gsmtp"));
  CHECK(x.remote_mta.starts_with("example-com.mx.example.net. (192.0.2.50"));
}

TEST_CASE("Exchange: both recipients, and the base64 message/rfc822 is read") {
  auto r = parse_report(fixture("office365-dsn.eml"));
  REQUIRE(r.ok());
  CHECK(r->reporting_mta == "AM0PR01MB1234.eurprd01.prod.example.com");
  REQUIRE(r->recipients.size() == 2);
  CHECK(r->recipients[0].diagnostic ==
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient alice@example.com not found by SMTP "
        "address lookup");
  CHECK(r->recipients[1].original_recipient == "bob@example.com");
  CHECK(r->original.return_path == "b-8w3e5r@bounces.mail.example.com");
}

TEST_CASE("a global DSN: UTF-8 addresses, the escaped ones decoded") {
  auto r = parse_report(fixture("global-dsn.eml"));
  REQUIRE(r.ok());
  REQUIRE(r->recipients.size() == 1);
  CHECK(r->recipients[0].original_recipient == "j\xC3\xB6rg@example.com");
  CHECK(r->original.return_path == "b-1a2s3d@bounces.mail.example.com");
}

TEST_CASE("8-bit bytes that are not UTF-8 become U+FFFD") {
  auto r = parse_report(fixture("mailbox-full.eml"));
  REQUIRE(r.ok());
  REQUIRE(r->recipients.size() == 1);
  CHECK(r->recipients[0].diagnostic ==
        "552 5.2.2 <full@example.org>: Bo\xEF\xBF\xBDte aux lettres pleine (mailbox full)");
  CHECK(r->reporting_mta == "mx.example.org");
  CHECK_FALSE(r->original.found);
}

TEST_CASE("an ARF abuse report (RFC 5965 B.2)") {
  auto r = parse_report(fixture("arf-abuse.eml"));
  REQUIRE(r.ok());
  CHECK(r->kind == ReportKind::complaint);
  CHECK(r->feedback_type == "abuse");
  CHECK(complaint_suppresses(r->feedback_type));
  CHECK(r->user_agent == "SomeGenerator/1.0");
  CHECK(r->version == "1");
  CHECK(r->original_mail_from == "somespammer@example.net");
  CHECK(r->original_rcpt_to == std::vector<std::string>{"user@example.com"});
  CHECK_FALSE(r->rcpt_redacted);
  CHECK(r->arrival_date == "Thu, 8 Mar 2005 14:00:00 EDT");
  CHECK(r->reporting_mta == "mail.example.com");
  CHECK(r->source_ip == "192.0.2.1");
  CHECK(r->reported_domains == std::vector<std::string>{"example.net"});
  CHECK(r->recipients.empty());
  CHECK(r->original.list_unsubscribe ==
        std::vector<std::string>{"https://example.net/unsubscribe?t=9f8e7d",
                                 "mailto:leave@example.net"});
  CHECK(r->original.subject == "Earn money");
}

TEST_CASE("an ARF with a redacted recipient still names the message") {
  auto r = parse_report(fixture("arf-redacted.eml"));
  REQUIRE(r.ok());
  CHECK(r->feedback_type == "abuse");
  CHECK(r->rcpt_redacted);
  CHECK(r->original_rcpt_to ==
        std::vector<std::string>{"3f8a9c0d1e2b4a6c8e0f1a2b3c4d5e6f@example.net"});
  CHECK(r->original_mail_from == "b-4f5g6h@bounces.mail.example.com");
  CHECK(r->original.return_path == "b-4f5g6h@bounces.mail.example.com");
  CHECK(r->original.list_id == "customer-update.mail.example.com");
  CHECK(r->original.list_unsubscribe ==
        std::vector<std::string>{"https://mail.example.com/unsubscribe?t=r3d4ct"});
}

TEST_CASE("a not-spam report is a complaint that suppresses nobody") {
  auto r = parse_report(fixture("arf-not-spam.eml"));
  REQUIRE(r.ok());
  CHECK(r->feedback_type == "not-spam");
  CHECK_FALSE(complaint_suppresses(r->feedback_type));
  CHECK(r->original_rcpt_to == std::vector<std::string>{"fan@example.org"});
}

TEST_CASE("plain-text notices: addresses only from the failure statement") {
  SUBCASE("qmail") {
    auto r = parse_report(fixture("qmail.eml"));
    REQUIRE(r.ok());
    CHECK(r->reporting_mta == "mail.example.net");
    REQUIRE(r->recipients.size() == 2);
    CHECK(r->recipients[0].diagnostic == "Sorry, no mailbox here by that name. (#5.1.1)");
    CHECK(r->recipients[1].diagnostic ==
          "192.0.2.70 does not like recipient. Remote host said: 550 5.1.1 <remote@example.org>: "
          "Recipient address rejected: User unknown Giving up on 192.0.2.70.");
  }
  SUBCASE("Exim") {
    auto r = parse_report(fixture("exim-text.eml"));
    REQUIRE(r.ok());
    REQUIRE(r->recipients.size() == 2);
    CHECK(r->recipients[1].diagnostic == "mailbox is full: retry timeout exceeded");
    CHECK(r->original.list_unsubscribe ==
          std::vector<std::string>{"https://mail.example.com/unsubscribe?t=e4x1m2"});
  }
  SUBCASE("Postfix") {
    auto r = parse_report(fixture("postfix-text-only.eml"));
    REQUIRE(r.ok());
    CHECK(r->reporting_mta == "mail.example.com");
    REQUIRE(r->recipients.size() == 1);
    CHECK(r->recipients[0].original_recipient == "list@example.com");
    CHECK(r->recipients[0].diagnostic ==
          "host mx.example.com[192.0.2.90] said: 550 5.2.1 <member@example.com>: Mailbox disabled "
          "for this recipient (in reply to RCPT TO command)");
  }
  // No fixture's trap address (in the quoted message) is ever a recipient.
  for (const char* name : {"qmail.eml", "exim-text.eml", "sendmail-text.eml", "yahoo-legacy.eml"}) {
    CAPTURE(name);
    auto r = parse_report(fixture(name));
    REQUIRE(r.ok());
    for (const ReportRecipient& x : r->recipients)
      CHECK(x.address.find("trap") == std::string::npos);
  }
}

TEST_CASE("input that is not a mail message is refused, anything else is read") {
  const char* not_messages[] = {
      "",
      "   \r\n\r\n",
      "hello world\nthis is text\n",
      "\r\nSubject: a blank line first\r\n\r\nbody\r\n",
      "From MAILER-DAEMON Mon Jan 15 10:00:05 2024\n",
      "<html><body>hi</body></html>",
  };
  for (const char* in : not_messages) {
    CAPTURE(in);
    CHECK_FALSE(parse_report(in).ok());
  }
  auto headers_only = parse_report("Subject: hello\r\n");
  REQUIRE(headers_only.ok());
  CHECK(headers_only->kind == ReportKind::unknown);
  CHECK(headers_only->recipients.empty());
  CHECK_FALSE(headers_only->original.found);
}

TEST_CASE("an mbox From line, as local(8) and pipe(8) may add, is skipped") {
  std::string data = fixture("postfix-hard.eml");
  auto r = parse_report("From MAILER-DAEMON  Mon Jan 15 10:00:05 2024\n" + data);
  REQUIRE(r.ok());
  CHECK(r->kind == ReportKind::bounce);
  REQUIRE(r->recipients.size() == 1);
  CHECK(r->recipients[0].address == "nobody@example.org");
}

namespace {
std::string dsn(const std::string& status_body,
                const std::string& type = "message/delivery-status") {
  return "From: MAILER-DAEMON@mail.example.com\r\n"
         "To: b-x@bounces.mail.example.com\r\n"
         "Subject: Undelivered Mail Returned to Sender\r\n"
         "MIME-Version: 1.0\r\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
         "\r\n"
         "--B\r\n"
         "Content-Type: text/plain\r\n"
         "\r\n"
         "Notification\r\n"
         "--B\r\n"
         "Content-Type: " +
         type +
         "\r\n"
         "\r\n" +
         status_body +
         "\r\n"
         "--B--\r\n";
}
}  // namespace

TEST_CASE("DSN recipient groups without the blank lines between them") {
  struct Case {
    const char* name;
    const char* body;
  };
  const Case cases[] = {
      {"Postfix order",
       "Reporting-MTA: dns; mail.example.com\r\n"
       "Final-Recipient: rfc822; a@example.org\r\n"
       "Original-Recipient: rfc822; oa@example.org\r\n"
       "Action: failed\r\n"
       "Status: 5.1.1\r\n"
       "Final-Recipient: rfc822; b@example.org\r\n"
       "Original-Recipient: rfc822; ob@example.org\r\n"
       "Action: delayed\r\n"
       "Status: 4.2.2\r\n"},
      {"Sendmail order",
       "Reporting-MTA: dns; mail.example.com\r\n"
       "Original-Recipient: rfc822; oa@example.org\r\n"
       "Final-Recipient: rfc822; a@example.org\r\n"
       "Action: failed\r\n"
       "Status: 5.1.1\r\n"
       "Original-Recipient: rfc822; ob@example.org\r\n"
       "Final-Recipient: rfc822; b@example.org\r\n"
       "Action: delayed\r\n"
       "Status: 4.2.2\r\n"},
      {"Exim order",
       "Reporting-MTA: dns; mail.example.com\r\n"
       "Action: failed\r\n"
       "Final-Recipient: rfc822; a@example.org\r\n"
       "Original-Recipient: rfc822; oa@example.org\r\n"
       "Status: 5.1.1\r\n"
       "Action: delayed\r\n"
       "Final-Recipient: rfc822; b@example.org\r\n"
       "Original-Recipient: rfc822; ob@example.org\r\n"
       "Status: 4.2.2\r\n"},
      {"the second group has an Original-Recipient, the first none",
       "Reporting-MTA: dns; mail.example.com\r\n"
       "Final-Recipient: rfc822; a@example.org\r\n"
       "Action: failed\r\n"
       "Status: 5.1.1\r\n"
       "Original-Recipient: rfc822; ob@example.org\r\n"
       "Final-Recipient: rfc822; b@example.org\r\n"
       "Action: delayed\r\n"
       "Status: 4.2.2\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    auto r = parse_report(dsn(c.body));
    REQUIRE(r.ok());
    CHECK(r->kind == ReportKind::bounce);
    CHECK(r->reporting_mta == "mail.example.com");
    REQUIRE(r->recipients.size() == 2);
    CHECK(r->recipients[0].address == "a@example.org");
    CHECK(r->recipients[0].action == "failed");
    CHECK(r->recipients[0].bounce_class == BounceClass::hard);
    CHECK(r->recipients[1].address == "b@example.org");
    CHECK(r->recipients[1].original_recipient == "ob@example.org");
    CHECK(r->recipients[1].action == "delayed");
    CHECK(r->recipients[1].status == "4.2.2");
    CHECK(r->recipients[1].bounce_class == BounceClass::soft);
  }
}

TEST_CASE("DSN field values: types, brackets, folding, comments, odd cases") {
  auto r =
      parse_report(dsn("Reporting-MTA: DNS;mail.example.com\r\n"
                       "\r\n"
                       "Final-Recipient: RFC822;<a@example.org>\r\n"
                       "Action: FAILED (permanent)\r\n"
                       "Status: 5.1.1 (bad destination mailbox address)\r\n"
                       "Diagnostic-Code: smtp;\r\n"
                       "\t550 5.1.1 user\r\n"
                       "   unknown\r\n"
                       "\r\n"
                       "Final-Recipient: utf-8; j+C3+B6rg@example.org\r\n"
                       "Action: failed\r\n"
                       "Status: not a code\r\n"
                       "Diagnostic-Code: smtp; 550 5.2.1 mailbox disabled\r\n"
                       "\r\n"
                       "Original-Recipient: rfc822; only-original@example.org\r\n"
                       "Action: failed\r\n"
                       "Status: 5.1.1\r\n"
                       "\r\n"
                       "Action: failed\r\n"
                       "Status: 5.1.1\r\n"
                       "Diagnostic-Code: smtp; 550 a group without any address is dropped\r\n"));
  REQUIRE(r.ok());
  CHECK(r->reporting_mta == "mail.example.com");
  REQUIRE(r->recipients.size() == 3);
  CHECK(r->recipients[0].address == "a@example.org");
  CHECK(r->recipients[0].action == "failed");
  CHECK(r->recipients[0].status == "5.1.1");
  CHECK(r->recipients[0].diagnostic == "550 5.1.1 user unknown");
  CHECK(r->recipients[0].smtp_code == 550);
  // xtext in an ASCII delivery-status; a Status that is no code gives way to the diagnostic's.
  CHECK(r->recipients[1].address == "j\xC3\xB6rg@example.org");
  CHECK(r->recipients[1].status == "5.2.1");
  CHECK(r->recipients[1].bounce_class == BounceClass::hard);
  CHECK(r->recipients[2].address == "only-original@example.org");
  CHECK(r->recipients[2].original_recipient.empty());
}

TEST_CASE("Original-Rcpt-To is read as an address list") {
  struct Case {
    const char* file;
    std::vector<std::string> rcpt_to;
    bool redacted;
  };
  const Case cases[] = {
      {"arf-rcpt-list.eml", {"victim@example.com", "other@example.com"}, false},
      {"arf-rcpt-list2.eml", {"victim@example.com", "xxxxxx@example.com"}, true},
      {"arf-rcpt-name.eml", {"victim@example.com"}, false},
      {"arf-rcpt-group.eml", {}, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    auto r = parse_report(fixture(c.file));
    REQUIRE(r.ok());
    CHECK(r->original_rcpt_to == c.rcpt_to);
    CHECK(r->rcpt_redacted == c.redacted);
  }
}

TEST_CASE("a DSN address that is not exactly one address is dropped with a note") {
  for (const char* file : {"dsn-two-addr.eml", "dsn-xtext.eml", "dsn-nul-address.eml"}) {
    CAPTURE(file);
    auto r = parse_report(fixture(file));
    REQUIRE(r.ok());
    CHECK(r->recipients.empty());
    CHECK(r->note.find("not one address") != std::string::npos);
  }
  auto r =
      parse_report(dsn("Final-Recipient: rfc822; a@example.org\r\n"
                       "Original-Recipient: rfc822; <x@example.org>, y@example.org\r\n"
                       "Action: failed\r\n"
                       "Status: 5.0.0\r\n"
                       "Diagnostic-Code: smtp; 550 5.2.1 mailbox disabled\r\n"));
  REQUIRE(r.ok());
  REQUIRE(r->recipients.size() == 1);
  CHECK(r->recipients[0].address == "a@example.org");
  CHECK(r->recipients[0].original_recipient.empty());
  CHECK(r->recipients[0].status == "5.2.1");  // Exim's generic 5.0.0 gives way
  CHECK(r->note.find("Original-Recipient") != std::string::npos);
}

TEST_CASE("a DSN of successes only is not a bounce") {
  auto r =
      parse_report(dsn("Reporting-MTA: dns; mail.example.com\r\n"
                       "\r\n"
                       "Final-Recipient: rfc822; a@example.org\r\n"
                       "Action: delivered\r\n"
                       "Status: 2.0.0\r\n"));
  REQUIRE(r.ok());
  CHECK(r->kind == ReportKind::unknown);
  REQUIRE(r->recipients.size() == 1);
  CHECK(r->recipients[0].bounce_class == BounceClass::unknown);
}

TEST_CASE("a bounce that cannot be read is unknown, not an auto-reply") {
  // Mail systems mark bounces auto-replied; this one's delivery-status part is missing.
  auto r = parse_report(
      "From: MAILER-DAEMON@mail.example.com (Mail Delivery System)\r\n"
      "Auto-Submitted: auto-replied\r\n"
      "Subject: Undelivered Mail Returned to Sender\r\n"
      "\r\n"
      "Something went wrong.\r\n");
  REQUIRE(r.ok());
  CHECK(r->kind == ReportKind::unknown);
  auto reply = parse_report(
      "From: Erin <erin@example.org>\r\n"
      "Subject: Automatic reply: Your January update\r\n"
      "\r\n"
      "I am away.\r\n");
  REQUIRE(reply.ok());
  CHECK(reply->kind == ReportKind::auto_reply);
  auto precedence = parse_report(
      "From: Erin <erin@example.org>\r\nPrecedence: auto_reply\r\nSubject: Re: hi\r\n\r\nx\r\n");
  REQUIRE(precedence.ok());
  CHECK(precedence->kind == ReportKind::auto_reply);
  auto generated = parse_report(
      "From: Erin <erin@example.org>\r\nAuto-Submitted: auto-generated\r\nSubject: Re: hi\r\n\r\n"
      "x\r\n");
  REQUIRE(generated.ok());
  CHECK(generated->kind == ReportKind::unknown);
}

TEST_CASE("the report's own header: encoded words decoded, folded fields unfolded") {
  // Out-of-office subjects as Outlook and Thunderbird write them in French: encoded words.
  for (const char* subject : {"=?utf-8?q?R=C3=A9ponse_automatique=C2=A0=3A?= Your update",
                              "=?UTF-8?B?UsOpcG9uc2UgYXV0b21hdGlxdWU=?="}) {
    CAPTURE(subject);
    auto r = parse_report(std::string("From: Erin <erin@example.org>\r\nSubject: ") + subject +
                          "\r\n\r\nJe suis absente.\r\n");
    REQUIRE(r.ok());
    CHECK(r->kind == ReportKind::auto_reply);
  }
  // An auto-reply subject in capitals, accented capitals included.
  auto capitals = parse_report(
      "From: Erin <erin@example.org>\r\nSubject: "
      "=?utf-8?q?R=C3=89PONSE_AUTOMATIQUE?=\r\n\r\nx\r\n");
  REQUIRE(capitals.ok());
  CHECK(capitals->kind == ReportKind::auto_reply);

  // Headers a DSN arrives with, each followed by the same body: every one is the bounce.
  const std::string body =
      "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mail.example.com\n\n"
      "Final-Recipient: rfc822; gone@example.org\nAction: failed\nStatus: 5.1.1\n\n--B--\n";
  const std::string from = "From: MAILER-DAEMON@mail.example.com\n";
  const std::string type = "Content-Type: multipart/report; report-type=delivery-status; ";
  std::string received;
  for (int i = 0; i < 210; ++i)
    received += "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n";
  struct Shape {
    std::string what;
    std::string header;
  };
  for (const Shape& shape : {
           Shape{"the boundary folded onto the next line", from + type + "\n\tboundary=\"B\"\n"},
           Shape{"a line of white space inside the header", from + " \n" + type + "boundary=B\n"},
           Shape{"a tab-only line inside the header", from + "\t\r\n" + type + "boundary=B\n"},
           Shape{"a white-space line inside the folded type", from + type + "\n \n boundary=B\n"},
           Shape{"the type below 210 Received fields", from + received + type + "boundary=B\n"},
           Shape{"a type of 9,000 bytes",
                 from + type + "x-pad=\"" + std::string(9000, 'p') + "\"; boundary=B\n"},
           Shape{"a UTF-8 byte-order mark first", "\xEF\xBB\xBF" + from + type + "boundary=B\n"},
           Shape{
               "forwarded whole as message/rfc822",
               "From: someone@example.net\nSubject: Fwd: bounce\nContent-Type: message/rfc822\n\n" +
                   from + type + "boundary=B\n"},
       }) {
    CAPTURE(shape.what);
    auto r = parse_report(shape.header + "\n" + body);
    REQUIRE(r.ok());
    CHECK(r->kind == ReportKind::bounce);
    REQUIRE(r->recipients.size() == 1);
    CHECK(r->recipients[0].address == "gone@example.org");
    CHECK_FALSE(r->original.found);  // no part returned the message, and the report is not one
  }
  // A header with no blank line after it has no body: read, and the note says so.
  auto headers_only = parse_report("From: Erin <erin@example.org>\r\nSubject: hi\r\n");
  REQUIRE(headers_only.ok());
  CHECK(headers_only->note.find("no body") != std::string::npos);
}

TEST_CASE("limits: the rest of the input is not read, and the note says so") {
  std::string data = fixture("postfix-hard.eml");
  SUBCASE("bytes") {
    ReportLimits limits;
    limits.max_bytes = data.size() - 300;  // inside the returned message
    auto r = parse_report(data, limits);
    REQUIRE(r.ok());
    CHECK(r->kind == ReportKind::bounce);
    CHECK(r->recipients.size() == 1);
    CHECK(r->note.find("larger than") != std::string::npos);
  }
  SUBCASE("Content-Type lines") {
    ReportLimits limits;
    limits.max_content_types = 3;  // the report's first three parts, not the returned message
    auto r = parse_report(data, limits);
    REQUIRE(r.ok());
    CHECK(r->kind == ReportKind::bounce);
    CHECK_FALSE(r->original.found);
    CHECK(r->note.find("Content-Type") != std::string::npos);
  }
  SUBCASE("lines") {
    ReportLimits limits;
    limits.max_lines = 10;
    auto r = parse_report(data, limits);
    REQUIRE(r.ok());
    CHECK(r->kind == ReportKind::unknown);
    CHECK(r->note.find("lines") != std::string::npos);
  }
  SUBCASE("multipart depth") {
    ReportLimits limits;
    limits.max_depth = 0;
    auto r = parse_report(data, limits);
    REQUIRE(r.ok());
    CHECK(r->kind == ReportKind::unknown);  // not an auto-reply, for all its Auto-Submitted
    CHECK_FALSE(r->note.empty());
  }
  SUBCASE("recipients") {
    std::string body = "Reporting-MTA: dns; mail.example.com\r\n";
    for (int i = 0; i < 10; ++i)
      body += "\r\nFinal-Recipient: rfc822; r" + std::to_string(i) +
              "@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n";
    ReportLimits limits;
    limits.max_recipients = 3;
    auto r = parse_report(dsn(body), limits);
    REQUIRE(r.ok());
    REQUIRE(r->recipients.size() == 3);
    CHECK(r->recipients[2].address == "r2@example.org");
    CHECK(r->note.find("recipients") != std::string::npos);
  }
  SUBCASE("nesting fixtures") {
    for (const char* name : {"garbage-nested.eml", "garbage-nested-multipart.eml"}) {
      CAPTURE(name);
      auto r = parse_report(fixture(name));
      REQUIRE(r.ok());
      CHECK_FALSE(r->note.empty());
    }
  }
}

TEST_CASE("every prefix and many changed bytes of every fixture are read without harm") {
  std::mt19937 rng(15);
  for (const Expected& e : expectations()) {
    CAPTURE(e.file);
    std::string data = fixture(e.file);
    std::vector<std::string> inputs;
    std::size_t step = std::max<std::size_t>(1, data.size() / 40);
    for (std::size_t n = 0; n <= data.size(); n += step) inputs.push_back(data.substr(0, n));
    for (int i = 0; i < 40 && !data.empty(); ++i) {
      std::string changed = data;
      for (int k = 0; k < 4; ++k) changed[rng() % changed.size()] = static_cast<char>(rng() % 256);
      inputs.push_back(std::move(changed));
    }
    for (const std::string& in : inputs) {
      auto r = parse_report(in);
      if (r.ok()) check_sane(*r);
    }
  }
}

TEST_CASE("random report-shaped input is read without harm") {
  const char* pieces[] = {
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"",
      "Content-Type: message/delivery-status",
      "Content-Type: message/rfc822",
      "Content-Type: text/rfc822-headers",
      "Content-Type: multipart/mixed; boundary=\"B\"",
      "Content-Transfer-Encoding: base64",
      "--B",
      "--B--",
      "",
      "Final-Recipient: rfc822; a@example.org",
      "Original-Recipient: utf-8; \\x{110000}\\x{D800}\\x{}+ZZ+4",
      "Action: failed",
      "Status: 5.1.1",
      "Diagnostic-Code: smtp; 550 5.1.1 user unknown",
      " folded",
      "<a@example.org>:",
      "  a@example.org",
      "Hi. This is the qmail-send program at x.",
      "This message was created automatically by mail delivery software.",
      "--- Below this line is a copy of the message.",
      "------ This is a copy of the message, including all the headers. ------",
      "Message-ID: <x@example.org>",
      "List-Unsubscribe: <",
      "\xFF\xFE\x00\x80",
  };
  std::mt19937 rng(3464);
  for (int i = 0; i < 300; ++i) {
    std::string in = "Subject: fuzz\r\n";
    int lines = static_cast<int>(rng() % 60);
    for (int k = 0; k < lines; ++k) {
      in += pieces[rng() % std::size(pieces)];
      in += (rng() % 2) ? "\r\n" : "\n";
    }
    CAPTURE(i);
    auto r = parse_report(in);
    REQUIRE(r.ok());
    check_sane(*r);
  }
}

TEST_CASE("complaint types, redaction and kind names") {
  CHECK(complaint_suppresses("abuse"));
  CHECK(complaint_suppresses("Fraud"));
  CHECK(complaint_suppresses(" virus "));
  CHECK_FALSE(complaint_suppresses("not-spam"));
  CHECK_FALSE(complaint_suppresses("other"));
  CHECK_FALSE(complaint_suppresses("auth-failure"));
  CHECK_FALSE(complaint_suppresses(""));

  struct Row {
    const char* address;
    bool redacted;
  };
  const Row rows[] = {
      {"user@example.com", false},
      {"<user@example.com>", false},
      {"redacted@example.com", true},
      {"[REDACTED]@example.com", true},
      {"xxxxxxxx@example.com", true},
      {"****@example.com", true},
      {"3f8a9c0d1e2b4a6c8e0f1a2b3c4d5e6f@example.net", true},
      {"deadbeef@example.net", false},  // too short for a hash
      {"@example.net", true},
      {"b-4f5g6h@bounces.mail.example.com", false},
  };
  for (const Row& r : rows) {
    CAPTURE(r.address);
    CHECK(looks_redacted(r.address) == r.redacted);
  }

  CHECK(to_string(ReportKind::bounce) == "bounce");
  CHECK(to_string(ReportKind::delay) == "delay");
  CHECK(to_string(ReportKind::complaint) == "complaint");
  CHECK(to_string(ReportKind::auto_reply) == "auto-reply");
  CHECK(to_string(ReportKind::unknown) == "unknown");
}

TEST_CASE("header fields GMime would choke on are cut before it sees them") {
  const std::string dsn_head =
      "From: MAILER-DAEMON@mail.example.com\r\nTo: someone@example.com\r\n"
      "Subject: Undelivered Mail Returned to Sender\r\n";
  struct Row {
    const char* what;
    std::string field;
  };
  std::string groups = "Cc: ";
  for (int i = 0; i < 60'000; ++i) groups += "g:";  // nested groups: a stack frame each in GMime
  std::string folded = "Cc: g:";
  for (int i = 0; i < 20'000; ++i) folded += "\r\n g:";
  std::string long_to = "To: ";
  for (int i = 0; i < 20'000; ++i) long_to += "a" + std::to_string(i) + "@example.com, ";
  std::string many;
  for (int i = 0; i < 5'000; ++i) many += "To: a" + std::to_string(i) + "@example.com\r\n";
  for (const Row& row :
       {Row{"60,000 nested groups", groups + "\r\n"},
        Row{"nested groups folded a line each", folded + "\r\n"},
        Row{"a 400 KB To: field", long_to + "\r\n"}, Row{"5,000 To: fields in a row", many}}) {
    CAPTURE(row.what);
    auto r = parse_report(dsn_head + row.field + "\r\nThe body.\r\n");
    REQUIRE(r.ok());
    CHECK(r->note.find("too many ") != std::string::npos);
    CHECK(r->recipients.empty());
  }
  // Within the limits nothing is cut: an ordinary header's colons and a folded Received chain.
  std::string fine = dsn_head;
  for (int i = 0; i < 200; ++i)
    fine += "Received: from a by b; Mon, 15 Jan 2024 10:00:00 +0000\r\n";
  auto r = parse_report(fine + "\r\nThe body.\r\n");
  REQUIRE(r.ok());
  CHECK(r->note.find("too many ") == std::string::npos);
}
