// What bulkmail does with a report that came back by mail (a bounce, a delay, a complaint) once
// it is matched to a message bulkmail sent, and the campaign rates that decide the automatic
// pause. The types the Store takes and gives back, and the pure rules: which report is stronger,
// how a soft-bounce run grows, when a rate trips the pause.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "bounce/bounce_class.h"
#include "config/config.h"
#include "store/message_state.h"
#include "store/suppression.h"

namespace bulkmail {

// What one report says of one message. The strongest kept in the message's `feedback` column
// (stronger_feedback), from which the campaign rates are counted.
enum class FeedbackKind {
  hard_bounce,     // the address is dead: the message becomes bounced, the address suppressed
  soft_bounce,     // full, too large, delayed: counted in the address's run
  policy_block,    // refused because of the sender: counted in the campaign's block rate
  complaint,       // ARF abuse, fraud, virus: the message becomes complained, the address
                   // suppressed for all mail
  complaint_note,  // ARF not-spam, other, auth-failure: recorded in the history, nothing more
};

// "hard-bounce", "soft-bounce", "policy-block", "complaint", "complaint-note": also the type of the
// event each writes.
std::string_view to_string(FeedbackKind k);

// The feedback column's value for a kind or a bounce class: "hard", "soft", "policy",
// "complaint"; "" for complaint_note and BounceClass::unknown (nothing to count).
std::string feedback_name(FeedbackKind k);
std::string feedback_name(BounceClass c);
// Whether a message whose feedback is `current` ("" for none) takes `next` instead: complaint over
// hard over policy over soft over nothing.
bool stronger_feedback(std::string_view next, std::string_view current);

// A message bulkmail sent, as a report is matched against it.
struct SentMessage {
  std::int64_t id = 0;
  std::string campaign;  // "" when none
  std::string category;
  std::string recipient;  // normalized
  MessageState state = MessageState::sent;
  std::string message_id_header;  // "<...>", "" when not recorded
  UnixMillis sent_at = 0;         // updated_at: bounces and complaints leave it as it was
  std::string feedback;           // the feedback column: "hard", "soft", ... or ""
};

// Whether a report may act on a message in `state`: one the relay accepted (sent), or one a report
// acted on before (bounced, complained). Never one that was not handed over.
bool takes_reports(MessageState state);

// One action a report asks for: one recipient of a bounce, or a complaint.
struct Feedback {
  std::int64_t message = 0;  // matched: a message in state sent, bounced or complained
  FeedbackKind kind = FeedbackKind::hard_bounce;
  std::string status;         // "5.1.1", or the Feedback-Type of a complaint
  std::string diagnostic;     // the remote server's text, one line
  std::string reporting_mta;  // who wrote the report
};

// The rules from the `bounces` config block (config/config.h) that the store applies.
struct FeedbackPolicy {
  int soft_limit = 3;                                     // soft bounces in a run that suppress
  std::int64_t soft_window_ms = 30LL * 24 * 3600 * 1000;  // a run's length at most
  std::int64_t min_sample = 500;  // messages answered before a campaign may pause itself
  // Rates that pause a campaign, in parts per million of its answered messages; 0: never.
  std::int64_t pause_complaint_ppm = 3'000;  // 0.3%, Gmail's line
  std::int64_t pause_bounce_ppm = 50'000;    // 5%
  std::int64_t pause_block_ppm = 50'000;     // 5%
};

// The bounces block as the store applies it.
FeedbackPolicy feedback_policy(const BouncesConfig& bounces);

// What the automatic pause and the rates count of one campaign.
struct CampaignFeedback {
  // Messages with an answer from the mail system: sent, bounced, complained or failed.
  std::int64_t answered = 0;
  std::int64_t hard_bounces = 0;  // feedback hard (bounced by mail, or refused to RCPT TO)
  std::int64_t complaints = 0;    // state complained
  std::int64_t blocks = 0;        // feedback policy (refused by mail, or in the transaction)
};

// Adds `n` messages in `state` whose feedback column is `feedback` ("" for none) to `c`.
void add_feedback(CampaignFeedback& c, MessageState state, std::string_view feedback,
                  std::int64_t n);

// The rates of `c`, each a fraction of c.answered (0 when nothing was answered).
struct CampaignRates {
  double hard_bounce = 0;
  double complaint = 0;
  double block = 0;
};
CampaignRates campaign_rates(const CampaignFeedback& c);

// Why a campaign must pause itself: `since` holds its counts since a person last resumed it
// (totals less the baseline then kept). The first of the complaint, hard-bounce and block rates to
// reach its threshold, once at least min_sample messages were answered, in words with its figures:
// "complaint rate 0.30% (3 of 1000 answered) reached bounces.pause_complaint_rate 0.3%".
// nullopt while none does. Integer arithmetic: it trips at exactly the configured rate.
std::optional<std::string> auto_pause_reason(const CampaignFeedback& since,
                                             const FeedbackPolicy& policy);

// "0.3%" for 3000 ppm: as the config writes a rate.
std::string format_ppm_percent(std::int64_t ppm);

// An address's run of soft bounces (the soft_bounces table), and what one more soft bounce, about
// message `bounced` sent at `sent_at` and reported at `now`, makes of it. `counted_before`: a soft
// bounce of this message was counted already (a delay notice, then the final failure, or several
// delay notices, in any order with other messages' reports). `delivered_between`: a message to the
// address was sent, and not reported, after the run's latest bounced message and before this one
// (the run is broken: the address took mail in between).
struct SoftBounceRun {
  int count = 0;
  UnixMillis first_at = 0;
  std::int64_t last_message = 0;
  UnixMillis last_sent_at = 0;
};
// The run after this bounce: the same run (counted before), one longer, or a new one of 1 (none
// yet, too old, or broken).
SoftBounceRun next_soft_bounce_run(const std::optional<SoftBounceRun>& run, std::int64_t bounced,
                                   UnixMillis sent_at, bool counted_before, bool delivered_between,
                                   UnixMillis now, const FeedbackPolicy& policy);

// What one report does to the message it is about (in a state that takes_reports): a hard
// bounce makes a sent message bounced, a complaint makes it complained; its feedback becomes the
// stronger of what it had and what the report says. The same rule for every backend.
struct MessageAfterReport {
  MessageState state;
  std::string feedback;
};
MessageAfterReport message_after_report(const Feedback& f, const SentMessage& m);

// The event a report writes to the address's history ("hard-bounce", "5.1.1 from
// mx.example.com: 550 5.1.1 <pat@example.com>: user unknown"), and the suppression for all mail it
// asks for: a hard bounce, a complaint, or the soft bounce that makes a run soft_limit long.
// `soft_count`: the address's run after this report (soft bounces only).
struct ReportEvent {
  std::string type;
  std::string detail;
  std::optional<SuppressionReason> suppress;
};
ReportEvent report_event(const Feedback& f, int soft_count, const FeedbackPolicy& policy);

// Whether a report of this kind moves the rates the automatic pause judges (a hard bounce, a
// complaint, a block).
bool counts_for_pause(FeedbackKind k);

// What recording one Feedback did.
struct FeedbackApplied {
  std::int64_t message = 0;
  bool applied = false;  // false: the message is gone, or was never handed to the relay
  FeedbackKind kind = FeedbackKind::hard_bounce;
  bool suppressed = false;      // the address was newly suppressed (or its suppression raised)
  int soft_count = 0;           // soft_bounce: the run's length now
  std::string paused_campaign;  // the campaign this feedback made pause itself, if any
  std::string pause_reason;
};

// A campaign that paused itself, and why (auto_pause_reason).
struct CampaignPaused {
  std::string campaign;
  std::string reason;
};

// The warning a pause is logged with: "campaign nov paused itself: <reason>; `bulkmailctl resume
// --campaign nov` sends it on".
std::string describe_pause(const CampaignPaused& p);

// One report, ready for the store: what it asks, and what it counts.
struct ReceivedReport {
  // SHA-256 of the report's bytes (32 bytes): a report already taken in changes nothing again.
  std::string digest;
  // The /metrics counters it adds one to, once: "report:bounce", "class:hard", "unmatched",
  // "forged", "mismatch", ...
  std::vector<std::string> counters;
  std::vector<Feedback> feedback;
  std::string source;  // who took it in, for the events: "bounce-pipe", "bounce-maildir"
};

struct ReportRecorded {
  bool duplicate = false;  // its digest was seen before: nothing changed, nothing counted
  std::vector<FeedbackApplied> applied;
};

}  // namespace bulkmail
