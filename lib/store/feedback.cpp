#include "store/feedback.h"

#include <array>

namespace bulkmail {

std::string_view to_string(FeedbackKind k) {
  switch (k) {
    case FeedbackKind::hard_bounce:
      return "hard-bounce";
    case FeedbackKind::soft_bounce:
      return "soft-bounce";
    case FeedbackKind::policy_block:
      return "policy-block";
    case FeedbackKind::complaint:
      return "complaint";
    case FeedbackKind::complaint_note:
      return "complaint-note";
  }
  return "complaint-note";
}

std::string feedback_name(FeedbackKind k) {
  switch (k) {
    case FeedbackKind::hard_bounce:
      return "hard";
    case FeedbackKind::soft_bounce:
      return "soft";
    case FeedbackKind::policy_block:
      return "policy";
    case FeedbackKind::complaint:
      return "complaint";
    case FeedbackKind::complaint_note:
      return "";
  }
  return "";
}

std::string feedback_name(BounceClass c) {
  return c == BounceClass::unknown ? std::string() : std::string(to_string(c));
}

namespace {
int feedback_rank(std::string_view f) {
  constexpr std::array<std::string_view, 4> kOrder = {"soft", "policy", "hard", "complaint"};
  for (std::size_t i = 0; i < kOrder.size(); ++i) {
    if (kOrder[i] == f) return static_cast<int>(i) + 1;
  }
  return 0;
}

double fraction(std::int64_t n, std::int64_t of) {
  return of > 0 ? static_cast<double>(n) / static_cast<double>(of) : 0.0;
}
}  // namespace

bool stronger_feedback(std::string_view next, std::string_view current) {
  return feedback_rank(next) > feedback_rank(current);
}

FeedbackPolicy feedback_policy(const BouncesConfig& b) {
  FeedbackPolicy p;
  p.soft_limit = b.soft_limit;
  p.soft_window_ms = std::int64_t{b.soft_window_days} * 24 * 3600 * 1000;
  p.min_sample = b.min_sample;
  p.pause_complaint_ppm = b.pause_complaint_ppm;
  p.pause_bounce_ppm = b.pause_bounce_ppm;
  p.pause_block_ppm = b.pause_block_ppm;
  return p;
}

bool takes_reports(MessageState state) {
  return state == MessageState::sent || state == MessageState::bounced ||
         state == MessageState::complained;
}

void add_feedback(CampaignFeedback& c, MessageState state, std::string_view feedback,
                  std::int64_t n) {
  switch (state) {
    case MessageState::sent:
    case MessageState::bounced:
    case MessageState::complained:
    case MessageState::failed:
      c.answered += n;
      break;
    default:
      return;  // waiting, or never tried: nothing answered
  }
  if (state == MessageState::complained) c.complaints += n;
  if (feedback == "hard") c.hard_bounces += n;
  if (feedback == "policy") c.blocks += n;
}

CampaignRates campaign_rates(const CampaignFeedback& c) {
  return {fraction(c.hard_bounces, c.answered), fraction(c.complaints, c.answered),
          fraction(c.blocks, c.answered)};
}

std::string describe_pause(const CampaignPaused& p) {
  return "campaign " + p.campaign + " paused itself: " + p.reason +
         "; `bulkmailctl resume --campaign " + p.campaign + "` sends it on";
}

std::string format_ppm_percent(std::int64_t ppm) {
  // ppm / 10,000 percent, with as many decimals as it needs (at most four).
  std::string out = std::to_string(ppm / 10'000);
  std::int64_t rest = ppm % 10'000;
  if (rest != 0) {
    std::string decimals = std::to_string(rest);
    decimals.insert(0, 4 - decimals.size(), '0');
    while (decimals.back() == '0') decimals.pop_back();
    out += "." + decimals;
  }
  return out + "%";
}

std::optional<std::string> auto_pause_reason(const CampaignFeedback& since,
                                             const FeedbackPolicy& policy) {
  if (since.answered <= 0 || since.answered < policy.min_sample) return std::nullopt;
  struct Rule {
    const char* name;
    const char* key;
    std::int64_t count;
    std::int64_t ppm;
  };
  const Rule rules[] = {
      {"complaint rate", "bounces.pause_complaint_rate", since.complaints,
       policy.pause_complaint_ppm},
      {"hard-bounce rate", "bounces.pause_bounce_rate", since.hard_bounces,
       policy.pause_bounce_ppm},
      {"block rate", "bounces.pause_block_rate", since.blocks, policy.pause_block_ppm},
  };
  for (const Rule& r : rules) {
    // count / answered >= ppm / 10^6, without rounding.
    if (r.ppm <= 0 || r.count * 1'000'000 < r.ppm * since.answered) continue;
    // The rate itself to two decimals of a percent, rounded down.
    std::int64_t hundredths = r.count * 10'000 / since.answered;
    std::string pct = std::to_string(hundredths / 100) + "." + (hundredths % 100 < 10 ? "0" : "") +
                      std::to_string(hundredths % 100) + "%";
    return std::string(r.name) + " " + pct + " (" + std::to_string(r.count) + " of " +
           std::to_string(since.answered) + " answered) reached " + r.key + " " +
           format_ppm_percent(r.ppm);
  }
  return std::nullopt;
}

SoftBounceRun next_soft_bounce_run(const std::optional<SoftBounceRun>& run, std::int64_t bounced,
                                   UnixMillis sent_at, bool counted_before, bool delivered_between,
                                   UnixMillis now, const FeedbackPolicy& policy) {
  if (run && (counted_before || run->last_message == bounced)) return *run;
  if (run && !delivered_between && now - run->first_at <= policy.soft_window_ms) {
    SoftBounceRun next = *run;
    ++next.count;
    if (sent_at >= next.last_sent_at) {
      next.last_message = bounced;
      next.last_sent_at = sent_at;
    }
    return next;
  }
  return {1, now, bounced, sent_at};
}

MessageAfterReport message_after_report(const Feedback& f, const SentMessage& m) {
  MessageAfterReport after{m.state, m.feedback};
  if (f.kind == FeedbackKind::hard_bounce && m.state == MessageState::sent) {
    after.state = MessageState::bounced;
  }
  if (f.kind == FeedbackKind::complaint) after.state = MessageState::complained;
  std::string next = feedback_name(f.kind);
  if (stronger_feedback(next, m.feedback)) after.feedback = next;
  return after;
}

ReportEvent report_event(const Feedback& f, int soft_count, const FeedbackPolicy& policy) {
  ReportEvent e;
  e.type = std::string(to_string(f.kind));
  e.detail = f.status.empty() ? e.type : f.status;
  if (!f.reporting_mta.empty()) e.detail += " from " + f.reporting_mta;
  if (!f.diagnostic.empty()) e.detail += ": " + f.diagnostic;
  if (f.kind == FeedbackKind::hard_bounce) e.suppress = SuppressionReason::hard_bounce;
  if (f.kind == FeedbackKind::complaint) e.suppress = SuppressionReason::complaint;
  if (f.kind == FeedbackKind::soft_bounce) {
    e.detail += " (soft bounce " + std::to_string(soft_count) + " of " +
                std::to_string(policy.soft_limit) + ")";
    if (soft_count >= policy.soft_limit) e.suppress = SuppressionReason::soft_bounce;
  }
  return e;
}

bool counts_for_pause(FeedbackKind k) {
  return k == FeedbackKind::hard_bounce || k == FeedbackKind::complaint ||
         k == FeedbackKind::policy_block;
}

}  // namespace bulkmail
