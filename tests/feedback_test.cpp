#include "store/feedback.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("feedback: a complaint outranks a hard bounce, which outranks a block and a soft one") {
  CHECK(stronger_feedback("soft", ""));
  CHECK(stronger_feedback("policy", "soft"));
  CHECK(stronger_feedback("hard", "policy"));
  CHECK(stronger_feedback("complaint", "hard"));
  CHECK_FALSE(stronger_feedback("soft", "hard"));
  CHECK_FALSE(stronger_feedback("hard", "hard"));
  CHECK_FALSE(stronger_feedback("", "soft"));
  CHECK(feedback_name(FeedbackKind::complaint_note).empty());
  CHECK(feedback_name(BounceClass::unknown).empty());
  CHECK(feedback_name(BounceClass::policy) == "policy");
}

TEST_CASE("feedback: what counts as answered, bounced, complained and blocked") {
  CampaignFeedback c;
  add_feedback(c, MessageState::sent, "", 90);
  add_feedback(c, MessageState::sent, "policy", 3);
  add_feedback(c, MessageState::bounced, "hard", 4);
  add_feedback(c, MessageState::failed, "hard", 1);  // refused to RCPT TO
  add_feedback(c, MessageState::complained, "complaint", 2);
  add_feedback(c, MessageState::queued, "", 50);     // not answered yet
  add_feedback(c, MessageState::suppressed, "", 7);  // never tried
  CHECK(c.answered == 100);
  CHECK(c.hard_bounces == 5);
  CHECK(c.complaints == 2);
  CHECK(c.blocks == 3);
  CampaignRates r = campaign_rates(c);
  CHECK(r.hard_bounce == doctest::Approx(0.05));
  CHECK(r.complaint == doctest::Approx(0.02));
  CHECK(r.block == doctest::Approx(0.03));
  CHECK(campaign_rates({}).complaint == 0.0);
}

TEST_CASE("the automatic pause trips at exactly the configured rate, and not before the sample") {
  FeedbackPolicy p;  // 500, 0.3%, 5%, 5%
  // 1,000 answered: the third complaint is 0.3%.
  CHECK_FALSE(auto_pause_reason({1000, 0, 2, 0}, p));
  auto why = auto_pause_reason({1000, 0, 3, 0}, p);
  REQUIRE(why);
  CHECK(*why ==
        "complaint rate 0.30% (3 of 1000 answered) reached bounces.pause_complaint_rate 0.3%");
  // One answered message short of the sample: nothing, whatever the rate.
  CHECK_FALSE(auto_pause_reason({499, 499, 499, 499}, p));
  // Hard bounces: 25 of 500 is 5%; 24 is not.
  CHECK_FALSE(auto_pause_reason({500, 24, 0, 0}, p));
  REQUIRE(auto_pause_reason({500, 25, 0, 0}, p));
  CHECK(auto_pause_reason({500, 25, 0, 0}, p)->find("hard-bounce rate 5.00%") == 0);
  CHECK(auto_pause_reason({500, 0, 0, 25}, p)->find("block rate 5.00%") == 0);
  // A threshold of 0 never trips.
  p.pause_block_ppm = 0;
  CHECK_FALSE(auto_pause_reason({500, 0, 0, 500}, p));
  // A rate that is not a whole number of the sample: 0.3% of 1001 is 3.003, so 3 is below it.
  CHECK_FALSE(auto_pause_reason({1001, 0, 3, 0}, FeedbackPolicy{}));
  CHECK(auto_pause_reason({1001, 0, 4, 0}, FeedbackPolicy{}));
}

TEST_CASE("rates written as the config writes them") {
  CHECK(format_ppm_percent(3000) == "0.3%");
  CHECK(format_ppm_percent(50000) == "5%");
  CHECK(format_ppm_percent(1) == "0.0001%");
  CHECK(format_ppm_percent(1'000'000) == "100%");
  CHECK(format_ppm_percent(12345) == "1.2345%");
}

TEST_CASE(
    "a soft-bounce run grows, restarts after its window or a delivery, and counts a message "
    "once") {
  FeedbackPolicy p;  // 3 within 30 days
  const UnixMillis day = 24LL * 3600 * 1000;
  SoftBounceRun one = next_soft_bounce_run(std::nullopt, 10, 1000, false, false, 2000, p);
  CHECK(one.count == 1);
  CHECK(one.first_at == 2000);
  CHECK(one.last_message == 10);
  // A second report about message 10 (the delay notice, then the failure): the same run.
  SoftBounceRun again = next_soft_bounce_run(one, 10, 1000, false, false, 5000, p);
  CHECK(again.count == 1);
  SoftBounceRun two = next_soft_bounce_run(one, 11, 3000, false, false, 9 * day, p);
  CHECK(two.count == 2);
  CHECK(two.first_at == 2000);
  CHECK(two.last_message == 11);
  // A delivery between them: a new run.
  CHECK(next_soft_bounce_run(two, 12, 5000, false, true, 10 * day, p).count == 1);
  // Past the window from the run's first: a new run.
  SoftBounceRun late = next_soft_bounce_run(two, 12, 5000, false, false, 2000 + 30 * day + 1, p);
  CHECK(late.count == 1);
  CHECK(late.first_at == 2000 + 30 * day + 1);
  CHECK(next_soft_bounce_run(two, 12, 5000, false, false, 2000 + 30 * day, p).count == 3);
  // Message 10's failure after message 11's delay: counted before, the run stays.
  CHECK(next_soft_bounce_run(two, 10, 1000, true, false, 10 * day, p).count == 2);
}

TEST_CASE("feedback: what one report does to its message, its event and its suppression") {
  SentMessage sent;
  sent.state = MessageState::sent;
  Feedback hard{1, FeedbackKind::hard_bounce, "5.1.1", "550 5.1.1 user unknown", "mx.example.com"};
  auto after = message_after_report(hard, sent);
  CHECK(after.state == MessageState::bounced);
  CHECK(after.feedback == "hard");
  // A complaint about a bounced message: complained, and the stronger feedback.
  sent.state = MessageState::bounced;
  sent.feedback = "hard";
  after = message_after_report({1, FeedbackKind::complaint, "abuse", "", ""}, sent);
  CHECK(after.state == MessageState::complained);
  CHECK(after.feedback == "complaint");
  // A soft bounce after a hard one changes neither.
  after = message_after_report({1, FeedbackKind::soft_bounce, "4.2.2", "", ""}, sent);
  CHECK(after.state == MessageState::bounced);
  CHECK(after.feedback == "hard");

  FeedbackPolicy policy;  // soft_limit 3
  ReportEvent e = report_event(hard, 0, policy);
  CHECK(e.type == "hard-bounce");
  CHECK(e.detail == "5.1.1 from mx.example.com: 550 5.1.1 user unknown");
  CHECK(e.suppress == SuppressionReason::hard_bounce);
  Feedback soft{1, FeedbackKind::soft_bounce, "4.2.2", "", ""};
  e = report_event(soft, 2, policy);
  CHECK(e.detail == "4.2.2 (soft bounce 2 of 3)");
  CHECK_FALSE(e.suppress);
  CHECK(report_event(soft, 3, policy).suppress == SuppressionReason::soft_bounce);
  e = report_event({1, FeedbackKind::policy_block, "", "", ""}, 0, policy);
  CHECK(e.detail == "policy-block");
  CHECK_FALSE(e.suppress);
  CHECK(counts_for_pause(FeedbackKind::policy_block));
  CHECK(counts_for_pause(FeedbackKind::complaint));
  CHECK_FALSE(counts_for_pause(FeedbackKind::soft_bounce));
  CHECK_FALSE(counts_for_pause(FeedbackKind::complaint_note));
}
