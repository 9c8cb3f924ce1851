// What a message that came back to the bounce address says: a bounce or a delay (RFC 3464 DSN,
// RFC 6533 global DSN, or the plain-text notices of qmail, Exim, Sendmail and Postfix), a
// complaint (RFC 5965 ARF), an auto-reply (RFC 3834, X-Autoreply, out-of-office subjects), or
// nothing understood. MIME is read by GMime; the report's own field blocks and the plain-text
// notices are read here, line by line, within fixed bounds.
//
// Pure: no I/O, no logging, no state between calls; safe on any bytes from anyone. Every limit
// below bounds the time and memory of one call, so the parser can be fuzzed as it is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "bounce/bounce_class.h"

namespace bulkmail {

enum class ReportKind {
  bounce,     // at least one recipient failed
  delay,      // recipients delayed (the MTA goes on trying), none failed
  complaint,  // an ARF feedback report, of any Feedback-Type
  // Out-of-office, vacation, challenge-response: Auto-Submitted: auto-replied (RFC 3834),
  // X-Autoreply and kin, Precedence: auto_reply, or an "Out of office" / "Automatic reply"
  // subject. Never a bounce. Mail systems mark their bounces auto-replied too, so a message
  // from MAILER-DAEMON or postmaster, with X-Failed-Recipients, or a multipart/report is never
  // taken for one: if it is not understood, it is unknown.
  auto_reply,
  unknown,  // a mail message, but none of the above (or a DSN of successes only)
};

// "bounce", "delay", "complaint", "auto-reply", "unknown": the names `bounce parse --json` shows.
std::string_view to_string(ReportKind kind);

// One recipient a bounce or delay names. Every string here is valid UTF-8 (bytes that are not
// become U+FFFD), on one line, and at most a few KiB long, whatever the report held.
struct ReportRecipient {
  // The failed address as the report gives it, without its address type ("rfc822;", "utf-8;")
  // or angle brackets; not normalized. The Final-Recipient, or the Original-Recipient when that
  // is all there is. In a plain-text notice, an address from the failure statement only.
  std::string address;
  std::string original_recipient;  // Original-Recipient (or Postfix's "expanded from"), or ""
  // Lower-case Action: "failed", "delayed", "delivered", "relayed", "expanded"; "failed" or
  // "delayed" for a plain-text notice; "" when the DSN gives none.
  std::string action;
  // The Status ("5.1.1"), or the first enhanced code in the diagnostic when there is no valid
  // Status; "" when neither has one.
  std::string status;
  // Diagnostic-Code unfolded, without its type ("smtp; "), or a plain-text notice's reason.
  std::string diagnostic;
  int smtp_code = 0;       // the reply code the diagnostic gives (550), 0 when none
  std::string remote_mta;  // Remote-MTA without its type ("dns; "), or ""
  BounceClass bounce_class = BounceClass::unknown;  // classify_bounce of the fields above
};

// The identifying headers of the message a report returns (a message/rfc822 or message/global
// part, text/rfc822-headers or message/global-headers, or the copy after a plain-text notice).
struct OriginalMessage {
  bool found = false;  // whether the report returned the message or its headers at all
  // "<id@host>": the Message-ID with its angle brackets, added when the report dropped them
  // (as RFC 5965's own example does); "" when absent.
  std::string message_id;
  std::vector<std::string> list_unsubscribe;  // each <URI> of List-Unsubscribe, without <>
  std::string list_id;                        // the id inside List-Id's <>: "news.mail.example.com"
  std::string return_path;  // the address in Return-Path's <>: the VERP address; "" for <>
  std::string to;           // the To header, decoded (RFC 2047)
  std::string from;         // the From header, decoded
  std::string subject;      // the Subject, decoded
};

struct Report {
  ReportKind kind = ReportKind::unknown;
  // Reporting-MTA without "dns;" (DSN and ARF), or the host a plain-text notice names.
  std::string reporting_mta;
  // Bounces and delays: each recipient the report names, in its order. Empty for complaints,
  // whose recipient is original_rcpt_to.
  std::vector<ReportRecipient> recipients;

  // Complaints (ARF). feedback_type is lower-case: abuse, fraud, other, virus, not-spam,
  // auth-failure, or whatever else the report says.
  std::string feedback_type;
  std::string user_agent;
  std::string version;
  std::vector<std::string> original_rcpt_to;  // without <>; RFC 6590 may have redacted them
  // True when an Original-Rcpt-To looks redacted (see looks_redacted): it must not be compared
  // with the address a message was sent to.
  bool rcpt_redacted = false;
  std::string original_mail_from;  // without <>: the envelope sender, the VERP address
  std::string arrival_date;        // Arrival-Date as given (ARF, and a DSN's per-message one)
  std::string source_ip;
  std::vector<std::string> reported_domains;

  OriginalMessage original;

  // Why the report was read only in part, or not at all, for a person: "the input is larger
  // than 10485760 bytes: only the first 10485760 were read". "" when it was read whole.
  std::string note;
};

// Bounds on one call's work. Past one, the rest of the input is not read and Report::note says
// so; what was read still counts.
struct ReportLimits {
  // Bytes read. A bounce carries the returned message; 10 MiB is more than any newsletter.
  std::size_t max_bytes = 10 * 1024 * 1024;
  // Lines read. 10 MiB of base64 is 140,000 lines; a flood of tiny lines would otherwise cost
  // GMime an object per line.
  std::size_t max_lines = 250'000;
  // Lines starting with "Content-Type" read: each level of MIME nesting needs one, so this
  // bounds GMime's recursion (its own limit is 1024 levels) and the multiparts it builds, a few
  // microseconds each, of which only max_depth levels are walked. A DSN with a returned message
  // has about ten, counting the returned message's own; a cut inside that message loses nothing
  // read (only its header is).
  std::size_t max_content_types = 32;
  // Lines starting with "--" read: each MIME part needs one, so this bounds the parts GMime
  // builds.
  std::size_t max_boundaries = 2'000;
  // One header field (a line and the lines folded onto it) read: its bytes, and its colons. GMime
  // parses an address field's groups ("g:" nested in "g:") recursively, a frame each: 60,000 of
  // them overflow the stack, and a 10 MB field costs it 85 times that in memory.
  std::size_t max_field_bytes = 64 * 1024;
  std::size_t max_field_colons = 256;
  // Header fields in a row (no blank line between): 250,000 To: lines cost GMime 200 MB.
  std::size_t max_fields_in_a_row = 1'000;
  // Multipart levels and parts walked to find the report's parts (the returned message is not
  // walked into).
  int max_depth = 8;
  std::size_t max_parts = 64;
  // Recipients read from one report (DSN groups, notice paragraphs, Original-Rcpt-To fields).
  // bulkmail sends each message to one recipient; a relay may batch a few.
  std::size_t max_recipients = 1'000;
};

// Reads one message. The error is only for input that is not a mail message at all (empty,
// or not beginning with a header field, after an optional mbox "From " line): the EX_DATAERR
// case. Anything else that cannot be understood, truncated MIME included, is kind unknown, with
// whatever could be read. Never throws for any input (only std::bad_alloc, as anything may).
// Thread-safe: GMime is initialised once, on first use.
Result<Report> parse_report(std::string_view message, const ReportLimits& limits = {});

// Whether a complaint of this Feedback-Type is an opt-out that suppresses the address: abuse,
// fraud and virus. not-spam, other and auth-failure are recorded, nothing more (issue 15).
bool complaint_suppresses(std::string_view feedback_type);

// Whether an address's local part looks redacted per RFC 6590: it holds "redacted", is all 'x'
// or '*', or is a hash (16 or more hex digits). A heuristic: RFC 6590 leaves the form to the
// reporter.
bool looks_redacted(std::string_view address);

}  // namespace bulkmail
