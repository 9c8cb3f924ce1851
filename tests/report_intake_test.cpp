// What a matched report asks of the store (report_intake.h: plan_report, describe), and where
// the envelope recipient is found.
#include "feedback/report_intake.h"

#include <doctest/doctest.h>

#include <algorithm>

using namespace bulkmail;

namespace {

Match matched_to(const std::string& recipient) {
  SentMessage m;
  m.id = 42;
  m.campaign = "nov";
  m.category = "customer-update";
  m.recipient = recipient;
  return {MatchStatus::matched, m, "return path"};
}

ReportRecipient failed(const std::string& address, BounceClass c, const std::string& status) {
  return {address, "", "failed", status, "550 " + status + " text", 550, "mx.example.net", c};
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST_CASE("a bounce asks one action per recipient of the message, by its class") {
  Report r;
  r.kind = ReportKind::bounce;
  r.reporting_mta = "relay.example.com";
  r.recipients = {failed("Pat@Example.com", BounceClass::hard, "5.1.1"),
                  failed("pat@example.com", BounceClass::unknown, "5.0.0")};
  ReportPlan p = plan_report(r, matched_to("pat@example.com"), "d", "bounce-pipe");
  REQUIRE(p.record.feedback.size() == 1);  // unknown says too little
  CHECK(p.record.feedback[0].kind == FeedbackKind::hard_bounce);
  CHECK(p.record.feedback[0].message == 42);
  CHECK(p.record.feedback[0].status == "5.1.1");
  CHECK(p.record.feedback[0].reporting_mta == "mx.example.net");  // the Remote-MTA first
  CHECK(p.record.source == "bounce-pipe");
  CHECK(p.record.digest == "d");
  CHECK(has(p.record.counters, "report:bounce"));
  CHECK(has(p.record.counters, "class:hard"));
  CHECK(has(p.record.counters, "class:unknown"));
  CHECK(p.mismatched.empty());

  r.recipients = {failed("full@example.com", BounceClass::soft, "5.2.2"),
                  failed("full@example.com", BounceClass::policy, "5.7.1")};
  p = plan_report(r, matched_to("full@example.com"), "d", "s");
  REQUIRE(p.record.feedback.size() == 2);
  CHECK(p.record.feedback[0].kind == FeedbackKind::soft_bounce);
  CHECK(p.record.feedback[1].kind == FeedbackKind::policy_block);
}

TEST_CASE("a report naming another recipient than its message's is an error, not an action") {
  Report r;
  r.kind = ReportKind::bounce;
  r.recipients = {failed("victim@example.com", BounceClass::hard, "5.1.1")};
  ReportPlan p = plan_report(r, matched_to("pat@example.com"), "d", "s");
  CHECK(p.record.feedback.empty());
  CHECK(p.mismatched == std::vector<std::string>{"victim@example.com"});
  CHECK(has(p.record.counters, "mismatch"));
  // The Original-Recipient may be the message's (a forward rewrote the final one).
  r.recipients[0].original_recipient = "pat@example.com";
  CHECK(plan_report(r, matched_to("pat@example.com"), "d", "s").record.feedback.size() == 1);
  ReportRecorded none;
  CHECK(describe(p, none).find("names victim@example.com, not the message's recipient") !=
        std::string::npos);
}

TEST_CASE("complaints: abuse suppresses, not-spam is noted, a redacted recipient is not compared") {
  Report r;
  r.kind = ReportKind::complaint;
  r.feedback_type = "abuse";
  r.user_agent = "SomeGenerator/1.0";
  r.original_rcpt_to = {"pat@example.com"};
  ReportPlan p = plan_report(r, matched_to("pat@example.com"), "d", "s");
  REQUIRE(p.record.feedback.size() == 1);
  CHECK(p.record.feedback[0].kind == FeedbackKind::complaint);
  CHECK(p.record.feedback[0].status == "abuse");
  r.original_rcpt_to = {"someone@example.com"};
  CHECK(plan_report(r, matched_to("pat@example.com"), "d", "s").record.feedback.empty());
  // Redacted (RFC 6590): not compared.
  r.original_rcpt_to = {"redacted@example.com"};
  r.rcpt_redacted = true;
  CHECK(plan_report(r, matched_to("pat@example.com"), "d", "s").record.feedback.size() == 1);
  // One in clear beside a redacted one: the clear one is compared.
  r.original_rcpt_to = {"sam@example.com", "redacted@example.com"};
  CHECK(plan_report(r, matched_to("pat@example.com"), "d", "s").record.feedback.empty());
  r.original_rcpt_to = {"pat@example.com"};
  r.feedback_type = "not-spam";
  ReportPlan note = plan_report(r, matched_to("pat@example.com"), "d", "s");
  REQUIRE(note.record.feedback.size() == 1);
  CHECK(note.record.feedback[0].kind == FeedbackKind::complaint_note);
}

TEST_CASE("what matches nothing, and what asks nothing, is only counted") {
  Report r;
  r.kind = ReportKind::bounce;
  r.recipients = {failed("pat@example.com", BounceClass::hard, "5.1.1")};
  ReportPlan p =
      plan_report(r, {MatchStatus::forged, std::nullopt, "a forged return path token"}, "d", "s");
  CHECK(p.record.feedback.empty());
  CHECK(has(p.record.counters, "forged"));
  ReportRecorded none;
  CHECK(describe(p, none) == "bounce: forged (a forged return path token), nothing changed");

  Report vacation;
  vacation.kind = ReportKind::auto_reply;
  ReportPlan v = plan_report(vacation, {}, "d", "s");
  CHECK(v.record.feedback.empty());
  CHECK(v.record.counters == std::vector<std::string>{"report:auto-reply"});
  CHECK(describe(v, none) == "auto-reply: nothing to do");
  ReportRecorded again;
  again.duplicate = true;
  CHECK(describe(p, again) == "bounce: taken in before, nothing changed");
}

TEST_CASE("the envelope recipients an MDA recorded: X-Original-To, then Delivered-To") {
  // Postfix's local(8) after an alias: Delivered-To is the alias's target, X-Original-To the
  // return path the report came to.
  CHECK(envelope_recipients_in("Return-Path: <>\r\nDelivered-To: bounces@bounces.example.com\r\n"
                               "X-Original-To: <B-Y@bounces.example.com>\r\n\r\nbody") ==
        std::vector<std::string>{"B-Y@bounces.example.com", "bounces@bounces.example.com"});
  CHECK(envelope_recipients_in("Delivered-To: b-x@bounces.example.com\nSubject: x\n\n") ==
        std::vector<std::string>{"b-x@bounces.example.com"});
  // Only the top header block: a Delivered-To in the body or a returned message is not one.
  CHECK(envelope_recipients_in("Subject: x\n\nDelivered-To: b-z@bounces.example.com\n").empty());
  CHECK(envelope_recipients_in("").empty());
  std::string many;
  for (int i = 0; i < 20; ++i) many += "Delivered-To: a" + std::to_string(i) + "@example.com\n";
  CHECK(envelope_recipients_in(many).size() == 8);
}

TEST_CASE("the bounces block as the store applies it") {
  BouncesConfig b;
  b.soft_limit = 4;
  b.soft_window_days = 2;
  b.min_sample = 9;
  b.pause_complaint_ppm = 1;
  b.pause_bounce_ppm = 2;
  b.pause_block_ppm = 3;
  FeedbackPolicy p = feedback_policy(b);
  CHECK(p.soft_limit == 4);
  CHECK(p.soft_window_ms == 2LL * 24 * 3600 * 1000);
  CHECK(p.min_sample == 9);
  CHECK(p.pause_complaint_ppm == 1);
  CHECK(p.pause_bounce_ppm == 2);
  CHECK(p.pause_block_ppm == 3);
}
