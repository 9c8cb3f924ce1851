// The embedded default Store: one SQLite file in WAL mode, shared by the daemon and the CLI at the
// same time. Not thread-safe: each thread opens its own SqliteStore on the same file. A failure of
// the database throws std::runtime_error: SQLite::Exception (derived from it) for what SQLite
// reports, std::runtime_error itself for what bulkmail finds wrong with the file.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "crypto/hmac.h"
#include "store/store.h"

namespace bulkmail {

struct SqliteFeedbackStatements;

// The claim statements (Store::claim_due: due retries, then whatever is due), for the test that
// checks how SQLite runs them.
std::string sqlite_claim_retries_sql();
std::string sqlite_claim_sql();

// How a SqliteStore treats the file it is given.
enum class SqliteOpen {
  // Create the file when absent and migrate it to this build's schema: bulkmaild and its --check.
  create,
  // The file must exist and already be at this build's schema: bulkmailctl, which must never
  // start an empty database where a wrong `database:` path points, nor migrate one behind a
  // running daemon's back.
  existing,
};

class SqliteStore final : public Store {
 public:
  // Opens the database at `path` as `open` says. Throws std::runtime_error when the file cannot be
  // opened or is not a bulkmail database this build can use, the message saying what to do: most
  // refusals (no file, not bulkmail's, another schema version) are not SQLite::Exception, so a
  // caller catches std::runtime_error.
  // `checkpoints`: whether commits on this connection move the WAL into the database file when
  // it has grown (SQLite's default). The daemon's writer turns this off and leaves checkpoints to
  // a SqliteCheckpointer on a thread of its own, so that no commit waits for one.
  explicit SqliteStore(const std::string& path, bool checkpoints = true,
                       SqliteOpen open = SqliteOpen::create);
  ~SqliteStore() override;

  // The schema version this build writes (PRAGMA user_version).
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

 private:
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
  // `message` and `campaign` name what caused it, for its event.
  SuppressOutcome suppress_one(const Suppression& s, UnixMillis now,
                               std::optional<MessageId> message, const std::string& campaign);
  // Moves the campaign's waiting messages past kPausedOffset (hold) or back; how many moved.
  std::int64_t shift_campaign(const std::string& name, bool hold);
  // The steps of record_reports (sqlite_feedback.cpp), inside its transaction.
  FeedbackApplied apply_feedback(const Feedback& f, const std::string& source,
                                 const FeedbackPolicy& policy, UnixMillis now);
  // record_outcomes' automatic pause: the campaigns of `refused` whose rates trip the policy.
  std::vector<CampaignPaused> pause_refused(std::span<const MessageId> refused, UnixMillis now);
  int count_soft_bounce(const SentMessage& m, const FeedbackPolicy& policy, UnixMillis now);
  void count_feedback(const std::string& name);
  // Pauses `campaign` for `reason` when its rates since it was last resumed trip the policy;
  // the reason when it did.
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
  std::optional<std::string> pause_if_tripped(const std::string& campaign,
                                              const FeedbackPolicy& policy, UnixMillis now);
  struct Statements;
  void add_event(UnixMillis at, const char* type, const std::string& address,
                 std::optional<MessageId> message, const std::string& category,
                 const std::string& campaign, const std::string& source, const std::string& detail);

  SQLite::Database db_;
  std::unique_ptr<Statements> st_;
  std::unique_ptr<HmacSha256> forget_mac_;  // keyed with the database's salt, read at first use
  // The feedback methods' statements (sqlite_feedback.cpp), prepared on first use.
  SqliteFeedbackStatements& feedback_statements();
  std::unique_ptr<SqliteFeedbackStatements> fst_;
  std::optional<FeedbackPolicy> feedback_policy_;  // record_outcomes' automatic pause
};

}  // namespace bulkmail
