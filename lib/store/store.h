// The queue store: the one interface through which bulkmail reads and changes its durable state
// (messages, suppressions, events). SQLite (sqlite_store.h) is the embedded default; PostgreSQL
// (postgres/pg_store.h), for several daemons on several machines, implements the same interface.
//
// Every call is one transaction: it happens whole or not at all. Callers pass `now`, so the logic
// behind the interface never reads a clock of its own. Addresses are passed normalized
// (address.h). Failures of the database itself throw; everything a caller should expect to
// happen (a duplicate, a suppressed recipient, an unknown campaign) comes back as a value.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "bounce/bounce_class.h"
#include "store/feedback.h"
#include "store/message_state.h"
#include "store/suppression.h"

namespace bulkmail {

using MessageId = std::int64_t;

// What Store::forgotten_key's keys start with: no address can (it holds no '@').
inline constexpr std::string_view kForgottenKeyPrefix = "forgotten:";

struct NewMessage {
  std::string campaign;  // empty: not part of a campaign (no duplicate check)
  std::string category;
  std::string recipient;         // normalized
  std::string vars_json = "{}";  // a JSON object of template variables, already validated
};

enum class EnqueueStatus {
  queued,          // a new message, waiting to be sent
  already_queued,  // the campaign already holds this recipient: nothing changed
  suppressed,      // stored in state `suppressed`: the recipient opted out or bounced
};

struct EnqueueResult {
  EnqueueStatus status;
  // 0 when already_queued, and when suppressed by a forgotten address's suppression: nothing is
  // stored of a person who asked to be forgotten.
  MessageId id = 0;
};

enum class UpdateStatus {
  updated,      // the message takes the new variables
  not_waiting,  // the campaign holds the recipient, but the message is sent, being sent,
                // suppressed or cancelled: left as it is
  not_found,    // the campaign does not hold the recipient
};

struct StateCounts {
  std::array<std::int64_t, kAllMessageStates.size()> by_state{};
  std::int64_t& operator[](MessageState s) { return by_state[static_cast<std::size_t>(s)]; }
  std::int64_t operator[](MessageState s) const { return by_state[static_cast<std::size_t>(s)]; }
};

// The messages queued under one name, and what the queue knows of them.
struct Campaign {
  std::string name;
  std::string origin;  // the file an import named it after; empty when none
  UnixMillis created_at = 0;
  std::optional<UnixMillis> paused_at;  // set while paused
  // Set when the campaign paused itself (Store::record_reports): why, with the figures.
  std::string pause_reason;
  std::optional<UnixMillis> resumed_at;  // when a person last resumed it
  UnixMillis last_activity = 0;          // the newest change to any of its messages
  StateCounts counts;
  CampaignFeedback feedback;  // all of it: the rates `status` shows
  // What the automatic pause judges: the messages answered since a person last resumed the
  // campaign (all of them when nobody did). A report coming later about a message answered
  // before the resume is not counted here.
  CampaignFeedback feedback_since_resume;
};

// One line of the append-only event log: the evidence of what happened to an address and when.
struct Event {
  std::int64_t id = 0;
  UnixMillis at = 0;
  std::string
      type;  // enqueued, attempt, sent, deferred, failed, suppressed, suppression-added, ...
  std::string address;  // normalized recipient
  std::optional<MessageId> message;
  std::string category;
  std::string campaign;
  std::string source;
  std::string detail;  // SMTP reply, reason, ...
};

// A message handed to the dispatcher by claim_due(): leased to one owner until lease_until.
struct ClaimedMessage {
  MessageId id = 0;
  std::string campaign;
  std::string category;
  std::string recipient;
  std::string vars_json;
  int attempts = 0;  // including this one
  UnixMillis created_at = 0;
  std::string lease_owner;  // the daemon the claim leased it to
};

// What became of one claimed message.
struct Outcome {
  MessageId id = 0;
  MessageState state =
      MessageState::sent;          // sent, deferred, failed, suppressed, or queued (released)
  int reply_code = 0;              // SMTP reply code, 0 when there was none
  std::string reply;               // SMTP reply text or the reason
  UnixMillis next_attempt_at = 0;  // for deferred
  std::string message_id_header;   // the RFC 5322 Message-ID, once composed
  // What a refusal said of the message (delivery/smtp_reply.h): hard (a dead address: suppress it
  // for all mail), policy (counted in the campaign's block rate), soft; unknown for the rest.
  BounceClass bounce_class = BounceClass::unknown;
  // The claim this outcome ends (ClaimedMessage::lease_owner and attempts): recorded only while
  // that claim still holds the message. Where several daemons share the database, a message whose
  // lease ran out may have been rescued and claimed again by another; the late outcome of the
  // first claim must not overwrite the second's. Empty: whichever claim holds it. The outcome's
  // event names the daemon (outcome_source) as its source.
  std::string lease_owner = {};
  int claimed_attempts = 0;
};

// How many of a claim of `limit` may be due retries ahead of the backlog: a quarter (at least
// one), so that retries go out on time and new mail still makes most of every claim.
inline std::size_t retry_share(std::size_t limit) { return limit == 0 ? 0 : (limit + 3) / 4; }

// Who an outcome's event says did it: the daemon whose claim it ends (its owner, host:pid:random),
// or "dispatcher" when the outcome names no claim.
inline std::string outcome_source(const Outcome& o) {
  return o.lease_owner.empty() ? "dispatcher" : o.lease_owner;
}

struct RecoveredLeases {
  std::vector<MessageId> possible_duplicates;  // their delivery may have begun
  std::size_t never_tried = 0;                 // queued again as if never claimed
  // The daemon whose lease ran out, for each of possible_duplicates (its owner, host:pid:random),
  // also named in each one's `lease-expired` event: whom to ask about a duplicate.
  std::vector<std::string> owners = {};
};

// A `lease-expired` event's detail: the message went back to the queue after `owner` stopped.
inline std::string lease_expired_detail(const std::string& owner) {
  return "requeued after its daemon (" + owner +
         ") stopped: possibly delivered already (duplicate risk)";
}

// What Store::suppress did with one suppression.
enum class SuppressOutcome {
  added,      // a new suppression
  raised,     // it existed with a weaker reason, and now records the person's own request
  recorded,   // it already said as much: the person's request is recorded as an event only
  unchanged,  // it existed already; nothing recorded (not a person's own request)
};

enum class LiftStatus {
  lifted,         // removed; `suppression` is what was removed
  not_found,      // no suppression of exactly that address and category
  needs_consent,  // kept: it records the recipient's choice; `suppression` is what was kept
};

struct LiftResult {
  LiftStatus status;
  std::optional<Suppression> suppression;
};

// What the dispatcher last said it is doing, for `bulkmailctl status`.
struct DispatchState {
  std::string state;   // running, paused, stopped
  std::string detail;  // why, e.g. "the relay refused connections; retrying at ..."
  UnixMillis updated_at = 0;
  // Set while the daemon runs on an older config because the file failed to reload
  // (ConfigStatus::describe()); kept by set_dispatch_state, changed by set_config_problem.
  std::string config_problem;
  // The daemon that says it (its lease owner, host:pid:random). Where several share the database
  // each has its own word too (Store::daemons); empty: not said by a daemon.
  std::string daemon = {};
};

// One daemon's own word, where several share the database (PostgreSQL).
struct DaemonState {
  std::string owner;  // host:pid:random, as on its leases
  std::string state;  // running, paused, stopped
  std::string detail;
  UnixMillis since = 0;    // when it said so
  UnixMillis seen_at = 0;  // its last heartbeat (Store::renew_leases, every few seconds)
};

// What Store::prune removed.
struct PruneResult {
  std::int64_t messages = 0;
  std::int64_t events = 0;
  bool more = false;  // something before the cutoffs is not looked at yet: call again
};

// What Store::forget removed, and what it kept.
struct ForgetResult {
  std::int64_t messages = 0;
  std::int64_t events = 0;
  // Of `messages`, those a daemon was sending at that moment: they may still be delivered.
  std::int64_t in_flight = 0;
  // Every suppression kept under `key` (a salted hash) now, this forget's and earlier ones'.
  std::vector<Suppression> suppressions;
  std::string key;
  // Whether the write-ahead log could be emptied at once (no reader held an older snapshot), so
  // that no copy of the erased rows stays in the database's files.
  bool log_emptied = false;
};

struct SuppressionChange {
  bool added = true;  // false: lifted
  Suppression suppression;
};
struct SuppressionChanges {
  std::vector<SuppressionChange> changes;
  std::int64_t last = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Queues messages in one transaction; results line up with `messages`. A recipient already
  // suppressed for the category or for all mail is stored as `suppressed`, never `queued`. A
  // campaign named for the first time is created (with no origin); a message joining a paused
  // campaign waits with it.
  virtual std::vector<EnqueueResult> enqueue(std::span<const NewMessage> messages,
                                             const std::string& source, UnixMillis now) = 0;

  virtual StateCounts counts(const std::optional<std::string>& campaign) = 0;

  // A corrected import: each message of `m.campaign` to `m.recipient` that is not sent yet
  // (queued, deferred or failed) takes `m.vars_json` as its variables, recorded as a
  // `vars-updated` event; its state is left as it is (`retry` sends failed ones again). One
  // transaction; results line up with `messages`.
  virtual std::vector<UpdateStatus> update_vars(std::span<const NewMessage> messages,
                                                const std::string& source, UnixMillis now) = 0;

  // Adds suppressions in one transaction; the outcomes line up with `suppressions`. An existing
  // suppression keeps the time it was first made (the evidence of how long the address has been
  // suppressed). A person's own request (unsubscribe, complaint: is_recipient_choice) is never
  // lost behind it: it raises a weaker reason to its own, or, when the suppression already says
  // as much, is recorded as an event all the same.
  virtual std::vector<SuppressOutcome> suppress(std::span<const Suppression> suppressions,
                                                UnixMillis now) = 0;

  // Removes the suppression of exactly `address` and `category` (empty: the all-mail one), unless
  // it records the recipient's own choice and `consent_given` is false. The check and the removal
  // are one transaction: a person opting out again at that moment is never lifted unseen.
  virtual LiftResult unsuppress(const std::string& address, const std::string& category,
                                const std::string& source, UnixMillis now, bool consent_given) = 0;

  // The suppression that stops mail of `category` to `address`, if any (all-mail first), also
  // when the address was forgotten since.
  virtual std::optional<Suppression> find_suppression(const std::string& address,
                                                      const std::string& category) = 0;

  // Every suppression, ordered by address then category, streamed to `fn`.
  virtual void for_each_suppression(const std::function<void(const Suppression&)>& fn) = 0;

  // Every event for `address`, oldest first (and those kept under its forgotten_key).
  virtual std::vector<Event> history(const std::string& address) = 0;

  // The campaign `name`, created first when it does not exist (with `origin`, now). An existing
  // campaign keeps the origin it has, so the caller can tell whose name it is.
  virtual Campaign open_campaign(const std::string& name, const std::string& origin,
                                 UnixMillis now) = 0;
  virtual std::optional<Campaign> campaign(const std::string& name) = 0;
  // Removes the campaign if it holds no message (an import that stored nothing); true if it did.
  virtual bool drop_campaign_if_empty(const std::string& name) = 0;
  // Every campaign, oldest first.
  virtual std::vector<Campaign> campaigns() = 0;
  // Pauses (or resumes) the campaign: its queued and deferred messages, and any that become due
  // while it is paused, wait until it is resumed; messages being sent finish. Returns how many
  // waiting messages it held back (or released); nullopt for an unknown campaign. Pausing a
  // paused campaign changes nothing. Resuming clears an automatic pause's reason, and the
  // automatic pause then judges only what is answered after it (Campaign::feedback_since_resume).
  virtual std::optional<std::int64_t> set_campaign_paused(const std::string& name, bool paused,
                                                          UnixMillis now) = 0;

  // Queued and deferred messages of the campaign become `cancelled`; returns how many.
  virtual std::int64_t cancel_campaign(const std::string& campaign, const std::string& source,
                                       UnixMillis now) = 0;
  // Failed and deferred messages of the campaign go back to `queued` with fresh attempts.
  virtual std::int64_t retry_campaign(const std::string& campaign, const std::string& source,
                                      UnixMillis now) = 0;

  // --- personal data's lifetime ---

  // Deletes up to `limit` messages finished (sent, failed, suppressed, cancelled) before
  // `messages_before`, variables and all, and up to `limit` events (and as many digests of reports
  // taken in) from before `events_before`:
  // never the evidence of a suppression in force (the events that record it being made, asked
  // for again, lifted or forgotten, while the address is suppressed). nullopt: keep them all.
  // One short transaction, looking at a bounded number of rows, for the daemon to call in small
  // batches: each call goes on where the last stopped, until `more` is false.
  virtual PruneResult prune(std::optional<UnixMillis> messages_before,
                            std::optional<UnixMillis> events_before, std::size_t limit) = 0;

  // Erases `address`: its messages (whatever their state), their variables and its events. Its
  // suppressions stay, so that it is never mailed against its wish, but under a salted hash of the
  // address (forgotten_key) rather than the address: an enqueue or import of the address later
  // still finds them (and stores nothing), its own opt-outs later are kept under the hash too
  // while no message holds the address, and its history shows one `forgotten` event holding no
  // personal data (none when nothing was stored). One transaction, its deleted content
  // overwritten, then the write-ahead log emptied when it can be.
  virtual ForgetResult forget(const std::string& address, const std::string& source,
                              UnixMillis now) = 0;
  // The key a forgotten address's suppressions and events are kept under: "forgotten:" and the
  // hex HMAC-SHA256 of the address under this database's own random salt.
  virtual std::string forgotten_key(const std::string& address) = 0;

  // --- what comes back by mail (store/feedback.h) ---

  // The message `id`, whatever its state; nullopt when there is none.
  virtual std::optional<SentMessage> find_message(MessageId id) = 0;
  // The message whose Message-ID header is `message_id` ("<...>"), if bulkmail recorded it.
  virtual std::optional<SentMessage> find_message_by_header(const std::string& message_id) = 0;
  // The first message of `category` to `address` sent (sent, bounced, complained) at or after
  // `since`: the one an unsubscribe token issued at `since` was composed into.
  virtual std::optional<SentMessage> find_message_sent_to(const std::string& address,
                                                          const std::string& category,
                                                          UnixMillis since) = 0;
  // Takes in reports in one transaction; the results line up with `reports`. A report whose
  // digest was taken in before changes nothing (counted as "duplicate"). Otherwise its counters
  // go up by one and each Feedback acts on its message, if that is in state sent, bounced or
  // complained:
  //  - hard_bounce: sent -> bounced; the address suppressed for all mail (hard-bounce);
  //  - soft_bounce: the address's run grows (next_soft_bounce_run); at policy.soft_limit the
  //    address is suppressed for all mail (soft-bounce) and the run ends;
  //  - policy_block: counted for the block rate;
  //  - complaint: sent or bounced -> complained; the address suppressed for all mail (complaint,
  //    the person's own choice: it raises a weaker reason);
  //  - complaint_note: recorded, nothing more.
  // Each writes an event of its kind's name to the address's history (status, reporting MTA,
  // diagnostic), and the strongest kept in the message's feedback. Then a campaign whose rates
  // since it was last resumed trip auto_pause_reason pauses itself. Suppressions commit as
  // Store::suppress's do, waiting for the disk.
  virtual std::vector<ReportRecorded> record_reports(std::span<const ReceivedReport> reports,
                                                     const FeedbackPolicy& policy,
                                                     UnixMillis now) = 0;
  // Every feedback counter (ReceivedReport::counters, "duplicate"), by name.
  virtual std::vector<std::pair<std::string, std::int64_t>> feedback_counters() = 0;

  // --- the dispatcher's side ---

  // Leases up to `limit` due messages (queued, or deferred and due) to `owner` until
  // `lease_until`: due retries first, up to retry_share(limit), then the rest oldest due first
  // (a backlog is due from its import on, and would otherwise hold every retry back until it is
  // sent). Messages whose recipient is suppressed by now are moved to `suppressed` in the same
  // transaction and not returned.
  virtual std::vector<ClaimedMessage> claim_due(const std::string& owner, std::size_t limit,
                                                UnixMillis now, UnixMillis lease_until) = 0;

  // Records outcomes of claimed messages in one transaction (group commit). A refusal in the SMTP
  // transaction counts in its campaign's rates as a report by mail does (a hard bounce, a block);
  // when a feedback policy is set, a campaign whose rates since it was last resumed trip it pauses
  // itself in the same transaction. Returns the campaigns that did.
  virtual std::vector<CampaignPaused> record_outcomes(std::span<const Outcome> outcomes,
                                                      UnixMillis now) = 0;
  // Campaigns with messages still to send whose rates, judged now, trip the feedback policy pause
  // themselves: the rates a report found under the sample may reach it as more messages are
  // answered. The daemon calls it once a minute. Returns those that paused; none without a policy.
  virtual std::vector<CampaignPaused> pause_tripped_campaigns(UnixMillis now) = 0;
  // The rules record_outcomes and pause_tripped_campaigns pause campaigns by: the daemon sets the
  // `bounces` block's at start and on each reload. nullopt (the default): it pauses none.
  virtual void set_feedback_policy(const std::optional<FeedbackPolicy>& policy) = 0;

  // Messages still `sending` whose lease ends at or before `expired_by` (a daemon died mid-send)
  // go back to `queued`. `started` names the messages whose delivery may have begun (nullopt:
  // not known, so every one may have): those may have been delivered already and are possible
  // duplicates, their attempt spent; the others were only claimed, and get their attempt back.
  // A daemon that holds the database alone passes a time past every lease.
  virtual RecoveredLeases recover_leases(UnixMillis expired_by, UnixMillis now,
                                         const std::optional<std::vector<MessageId>>& started) = 0;

  // Extends to `lease_until` the leases `owner` holds on messages still `sending` that have less
  // than two thirds of that time left (expiring before now + 2 (lease_until - now) / 3): a
  // daemon's heartbeat. With the shortest lease (30 s) and a heartbeat every 5 s, a lease is
  // renewed with 15 s or more to spare. A message is mostly delivered long before, so most leases
  // are never rewritten (each renewal is a row write that would contend with the message's own
  // outcome). Where several daemons share the database, another rescues a message (recover_leases)
  // only once its lease ran out, which a live daemon never lets happen. Returns how many leases
  // were extended. `now` is the heartbeat Store::daemons shows.
  virtual std::int64_t renew_leases(const std::string& owner, UnixMillis now,
                                    UnixMillis lease_until) = 0;

  // How many messages reached `sent` at or after `since` (the daily limit after a restart), those
  // bounced or complained about since included.
  virtual std::int64_t count_sent_since(UnixMillis since) = 0;

  // The newest event's id (0 when there is none): where a watch of suppression changes starts.
  virtual std::int64_t last_event_id() = 0;
  // Suppressions added or lifted (by any process) after event `after`, oldest first, and the id
  // of the newest event looked at. An added one that was lifted again since comes with no reason
  // of its own (manual) and its lift follows it.
  virtual SuppressionChanges suppression_changes(std::int64_t after) = 0;

  // Writes state, detail and updated_at; leaves config_problem as it is.
  virtual void set_dispatch_state(const DispatchState& state) = 0;
  // Sets (or, empty, clears) DispatchState::config_problem.
  virtual void set_config_problem(const std::string& problem) = 0;
  virtual std::optional<DispatchState> dispatch_state() = 0;
  // Each daemon's own word and heartbeat, by owner, those seen in the last day: where several
  // daemons share the database. Empty on SQLite, where one daemon runs and dispatch_state() is
  // its word.
  virtual std::vector<DaemonState> daemons() = 0;
};

}  // namespace bulkmail
