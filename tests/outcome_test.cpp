#include "delivery/outcome.h"

#include <curl/curl.h>
#include <doctest/doctest.h>

using namespace bulkmail;

namespace {
JobResult delivered(Classification c, int attempts = 1) {
  JobResult r;
  r.kind = JobResult::Kind::delivered;
  r.classification = std::move(c);
  r.message.id = 7;
  r.message.attempts = attempts;
  r.message.created_at = 1'000'000;
  r.message_id_header = "<7.x@mail.example.com>";
  return r;
}
}  // namespace

TEST_CASE("outcomes: every result maps to one state") {
  RetryConfig retry;  // 60 s initial, 10 attempts, 72 h
  UnixMillis now = 2'000'000;
  struct Case {
    const char* name;
    JobResult in;
    MessageState state;
    bool suppress;
  };
  JobResult suppressed;
  suppressed.kind = JobResult::Kind::suppressed;
  suppressed.detail = "recipient suppressed (unsubscribe)";
  JobResult compose;
  compose.kind = JobResult::Kind::compose_failed;
  compose.detail = "variable 'x' is missing";
  JobResult aborted;
  aborted.kind = JobResult::Kind::aborted;
  const Case cases[] = {
      {"sent", delivered({Verdict::sent, 250, "250 ok"}), MessageState::sent, false},
      {"bounce", delivered({Verdict::bounced, 550, "550 5.1.1", false, false, BounceClass::hard}),
       MessageState::failed, true},
      {"rejected", delivered({Verdict::rejected, 554, "554 spam"}), MessageState::failed, false},
      {"deferred", delivered({Verdict::deferred, 451, "451 later"}), MessageState::deferred, false},
      {"deferred, attempts spent", delivered({Verdict::deferred, 451, "451 later"}, 10),
       MessageState::failed, false},
      {"421", delivered({Verdict::deferred, 421, "421 busy", true, true}), MessageState::deferred,
       false},
      {"never attempted", delivered({Verdict::deferred, 0, "refused", true, true}),
       MessageState::queued, false},
      {"suppressed before sending", suppressed, MessageState::suppressed, false},
      {"compose failed", compose, MessageState::failed, false},
      {"aborted at shutdown", aborted, MessageState::queued, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Outcome o = outcome_for(c.in, retry, now, 0.5, now + 1000);
    CHECK(o.state == c.state);
    CHECK((o.bounce_class == BounceClass::hard) == c.suppress);
  }
  Outcome d = outcome_for(delivered({Verdict::deferred, 451, "451 later"}), retry, now, 0.5, 0);
  CHECK(d.next_attempt_at == now + 60'000);
  CHECK(d.reply == "451 later");
  Outcome q = outcome_for(delivered({Verdict::deferred, 0, "refused", true, true}), retry, now, 0.5,
                          now + 1000);
  CHECK(q.next_attempt_at == now + 1000);
  Outcome g = outcome_for(delivered({Verdict::deferred, 451, "451 later"}, 10), retry, now, 0.5, 0);
  CHECK(g.reply == "451 later (gave up after 10 attempts)");  // the code once, first
  Outcome s = outcome_for(delivered({Verdict::sent, 250, "250 ok"}), retry, now, 0.5, 0);
  CHECK(s.message_id_header == "<7.x@mail.example.com>");
  CHECK(s.reply_code == 250);
}
