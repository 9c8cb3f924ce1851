#include "delivery/outcome.h"

#include "delivery/retry_policy.h"

namespace bulkmail {

Outcome outcome_for(const JobResult& r, const RetryConfig& retry, UnixMillis now, double jitter,
                    UnixMillis relay_retry_at) {
  const ClaimedMessage& m = r.message;
  Outcome o{m.id,          MessageState::sent, 0, "", 0, r.message_id_header, BounceClass::unknown,
            m.lease_owner, m.attempts};
  switch (r.kind) {
    case JobResult::Kind::suppressed:
      o.state = MessageState::suppressed;
      o.reply = r.detail;
      return o;
    case JobResult::Kind::compose_failed:
      o.state = MessageState::failed;
      o.reply = "not sent: " + r.detail;
      return o;
    case JobResult::Kind::aborted:
      o.state = MessageState::queued;  // handed back; the attempt is not counted
      o.reply = "not sent: " + r.detail;
      o.next_attempt_at = now;
      return o;
    case JobResult::Kind::delivered:
      break;
  }
  const Classification& c = r.classification;
  o.reply_code = c.code;
  o.reply = c.reply;
  if (c.relay_trouble && c.code == 0) {
    // Nothing was attempted (no connection, no greeting): hand it back without spending an attempt.
    o.state = MessageState::queued;
    o.next_attempt_at = relay_retry_at;
    return o;
  }
  switch (c.verdict) {
    case Verdict::sent:
      o.state = MessageState::sent;
      return o;
    case Verdict::bounced:
    case Verdict::rejected:
      o.state = MessageState::failed;
      o.bounce_class = c.bounce_class;
      return o;
    case Verdict::deferred: {
      RetryDecision d = decide_retry(m.attempts, m.created_at, now, retry, jitter);
      if (d.give_up) {
        o.state = MessageState::failed;
        o.reply = c.reply + " (gave up after " + std::to_string(m.attempts) + " attempts)";
      } else {
        o.state = MessageState::deferred;
        o.next_attempt_at = d.next_attempt_at;
      }
      return o;
    }
  }
  return o;
}

}  // namespace bulkmail
