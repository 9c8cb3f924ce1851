// The Store for several daemons on several machines: one PostgreSQL database (libpq, through
// pg_connection.h). Behaves as SqliteStore does, call for call: the same behaviour suite runs
// against both. Not thread-safe: each thread opens its own PostgresStore (its own connection).
// A failure of the database throws pg::Error (a std::runtime_error); what bulkmail finds wrong
// with the database (not bulkmail's, another schema version) throws std::runtime_error.
//
// The file split follows SqliteStore's: pg_store.cpp (messages, suppressions, campaigns),
// pg_dispatch.cpp (claims, outcomes, leases, retention, forgetting, the dispatcher's state),
// pg_feedback.cpp (what comes back by mail).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "crypto/hmac.h"
#include "store/postgres/pg_connection.h"
#include "store/store.h"

namespace bulkmail {

// How a PostgresStore treats the database it is given.
enum class PostgresOpen {
  // Create the tables when the database is empty and migrate it to this build's schema:
  // bulkmaild and its --check.
  create,
  // The database must already be bulkmail's at this build's schema: bulkmailctl.
  existing,
};

class PostgresStore final : public Store {
 public:
  // Connects with `conninfo` (a postgresql:// URI or libpq key=value words; libpq's PG*
  // variables, passfile and service file fill in the rest) and opens the database as `open`
  // says. Throws pg::Error when it cannot connect, std::runtime_error when the database is not
  // one this build can use.
  explicit PostgresStore(const std::string& conninfo, PostgresOpen open = PostgresOpen::create);
  ~PostgresStore() override;

  // The schema version this build writes (the table schema_version).
  static int schema_version();

  std::vector<EnqueueResult> enqueue(std::span<const NewMessage> messages,
                                     const std::string& source, UnixMillis now) override;
  StateCounts counts(const std::optional<std::string>& campaign) override;
  std::vector<UpdateStatus> update_vars(std::span<const NewMessage> messages,
                                        const std::string& source, UnixMillis now) override;
  std::vector<SuppressOutcome> suppress(std::span<const Suppression> suppressions,
                                        UnixMillis now) override;
  LiftResult unsuppress(const std::string& address, const std::string& category,
                        const std::string& source, UnixMillis now, bool consent_given) override;
  std::optional<Suppression> find_suppression(const std::string& address,
                                              const std::string& category) override;
  void for_each_suppression(const std::function<void(const Suppression&)>& fn) override;
  std::vector<Event> history(const std::string& address) override;
  Campaign open_campaign(const std::string& name, const std::string& origin,
                         UnixMillis now) override;
  std::optional<Campaign> campaign(const std::string& name) override;
  bool drop_campaign_if_empty(const std::string& name) override;
  std::vector<Campaign> campaigns() override;
  std::optional<std::int64_t> set_campaign_paused(const std::string& name, bool paused,
                                                  UnixMillis now) override;
  std::int64_t cancel_campaign(const std::string& campaign, const std::string& source,
                               UnixMillis now) override;
  std::int64_t retry_campaign(const std::string& campaign, const std::string& source,
                              UnixMillis now) override;
  std::vector<ClaimedMessage> claim_due(const std::string& owner, std::size_t limit, UnixMillis now,
                                        UnixMillis lease_until) override;
  std::vector<CampaignPaused> record_outcomes(std::span<const Outcome> outcomes,
                                              UnixMillis now) override;
  std::vector<CampaignPaused> pause_tripped_campaigns(UnixMillis now) override;
  void set_feedback_policy(const std::optional<FeedbackPolicy>& policy) override {
    feedback_policy_ = policy;
  }
  RecoveredLeases recover_leases(UnixMillis expired_by, UnixMillis now,
                                 const std::optional<std::vector<MessageId>>& started) override;
  PruneResult prune(std::optional<UnixMillis> messages_before,
                    std::optional<UnixMillis> events_before, std::size_t limit) override;
  ForgetResult forget(const std::string& address, const std::string& source,
                      UnixMillis now) override;
  std::string forgotten_key(const std::string& address) override;
  std::int64_t renew_leases(const std::string& owner, UnixMillis now,
                            UnixMillis lease_until) override;
  std::int64_t count_sent_since(UnixMillis since) override;
  std::int64_t last_event_id() override;
  SuppressionChanges suppression_changes(std::int64_t after) override;
  std::optional<SentMessage> find_message(MessageId id) override;
  std::optional<SentMessage> find_message_by_header(const std::string& message_id) override;
  std::optional<SentMessage> find_message_sent_to(const std::string& address,
                                                  const std::string& category,
                                                  UnixMillis since) override;
  std::vector<ReportRecorded> record_reports(std::span<const ReceivedReport> reports,
                                             const FeedbackPolicy& policy, UnixMillis now) override;
  std::vector<std::pair<std::string, std::int64_t>> feedback_counters() override;
  void set_dispatch_state(const DispatchState& state) override;
  void set_config_problem(const std::string& problem) override;
  std::optional<DispatchState> dispatch_state() override;
  std::vector<DaemonState> daemons() override;

  // The connection, for the tests that look at what the store wrote.
  pg::Connection& connection() { return c_; }

 private:
  // Each file's prepared statements, prepared once when the store connects.
  void prepare_store_statements();     // pg_store.cpp
  void prepare_dispatch_statements();  // pg_dispatch.cpp
  void prepare_feedback_statements();  // pg_feedback.cpp

  // --- pg_store.cpp ---
  void add_event(UnixMillis at, const char* type, const std::string& address,
                 std::optional<MessageId> message, const std::string& category,
                 const std::string& campaign, const std::string& source, const std::string& detail);
  // The suppression of exactly (address, category), without the all-mail fallback.
  std::optional<Suppression> exact_suppression(const std::string& address,
                                               const std::string& category);
  std::vector<Campaign> read_campaigns(const std::optional<std::string>& name);
  // What the campaign's messages answered at or after `since` count.
  CampaignFeedback feedback_since(const std::string& campaign, UnixMillis since);
  // `s` as it is stored: under the address's forgotten_key when the address was forgotten and
  // nothing holds it in clear since (a forgotten person opting out again stays forgotten).
  Suppression under_forgotten_key(const Suppression& s);
  // One suppression, inside the caller's transaction (Store::suppress says what it does);
  // `message` and `campaign` name what caused it, for its event. A change is announced to
  // every daemon (NOTIFY bulkmail_suppressions) when the transaction commits.
  SuppressOutcome suppress_one(const Suppression& s, UnixMillis now,
                               std::optional<MessageId> message, const std::string& campaign);
  // enqueue's steps, inside its transaction: the batch into the session's table enqueue_batch by
  // COPY; its campaigns held and its locks taken; what stops each message (its result set to
  // suppressed; a forgotten address's event written); the rest stored, with their events.
  struct StoppedInBatch {
    std::vector<std::string> suppressed_n, details;  // stored as suppressed, and why
    std::vector<std::string> forgotten_n;            // stored nowhere
    std::vector<bool> forgotten;                     // by position in the batch
  };
  void copy_batch(std::span<const NewMessage> messages);
  void lock_batch(std::span<const NewMessage> messages, UnixMillis now);
  StoppedInBatch stopped_in_batch(std::span<const NewMessage> messages, const std::string& source,
                                  UnixMillis now, std::vector<EnqueueResult>& results);
  void store_batch(std::span<const NewMessage> messages, const StoppedInBatch& stopped,
                   const std::string& source, UnixMillis now, std::vector<EnqueueResult>& results);
  // Moves the campaign's waiting messages past kPausedOffset (hold) or back; how many moved.
  std::int64_t shift_campaign(const std::string& name, bool hold);

  // --- pg_dispatch.cpp ---
  // record_outcomes' locks, inside its transaction: the campaigns of messages going back to wait
  // (FOR SHARE), and the suppression events' order when a hard bounce suppresses.
  void lock_for_outcomes(std::span<const Outcome> outcomes);
  // record_outcomes' automatic pause: the campaigns of `refused` whose rates trip the policy.
  std::vector<CampaignPaused> pause_refused(std::span<const MessageId> refused, UnixMillis now);

  // --- pg_feedback.cpp ---
  // The steps of record_reports, inside its transaction.
  FeedbackApplied apply_feedback(const Feedback& f, const std::string& source,
                                 const FeedbackPolicy& policy, UnixMillis now);
  int count_soft_bounce(const SentMessage& m, const FeedbackPolicy& policy, UnixMillis now);
  void count_feedback(const std::string& name);
  // Pauses `campaign` for `reason` when its rates since it was last resumed trip the policy;
  // the reason when it did.
  std::optional<std::string> pause_if_tripped(const std::string& campaign,
                                              const FeedbackPolicy& policy, UnixMillis now);
  // Pauses `campaign` for `reason` (it paused itself), counted for /metrics.
  void pause_itself(const std::string& campaign, const std::string& reason, UnixMillis now);
  // What record_reports keeps of each campaign it touches, within its transaction.
  struct CampaignTally {
    bool paused = false;
    std::optional<UnixMillis> resumed_at;
    CampaignFeedback since;  // Campaign::feedback_since_resume
  };
  CampaignTally& tally(const std::string& campaign);
  std::unordered_map<std::string, CampaignTally> tallies_;

  pg::Connection c_;
  std::unique_ptr<HmacSha256> forget_mac_;  // keyed with the database's salt, read at first use
  std::optional<FeedbackPolicy> feedback_policy_;  // record_outcomes' automatic pause
};

}  // namespace bulkmail
