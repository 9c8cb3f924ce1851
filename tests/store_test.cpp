// The store's behaviour suite: what every Store backend must do, run unchanged against SQLite and
// PostgreSQL (test_store.h). What only SQLite does (its file, WAL, PRAGMAs, migrations from its
// older versions) stays in sqlite_store_test.cpp.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "store/feedback.h"
#include "store/store.h"
#include "store_helpers.h"
#include "test_store.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

std::string state_of(TestDatabase& db, MessageId id) {
  return db.scalar("SELECT state FROM messages WHERE id = $1", {std::to_string(id)});
}

}  // namespace

TEST_CASE_TEMPLATE("reopening a database migrates nothing and loses nothing", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  auto again = db->open();
  CHECK(again->counts(std::nullopt)[MessageState::queued] == 0);
}

TEST_CASE_TEMPLATE("an address is queued at most once per campaign", B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  auto first = enqueue_one(*store, msg("a@example.com"));
  CHECK(first.status == EnqueueStatus::queued);
  CHECK(first.id > 0);
  CHECK(enqueue_one(*store, msg("a@example.com")).status == EnqueueStatus::already_queued);
  CHECK(enqueue_one(*store, msg("a@example.com", "c2")).status == EnqueueStatus::queued);
  // Outside a campaign there is no duplicate check: each enqueue is a message of its own.
  CHECK(enqueue_one(*store, msg("a@example.com", "")).status == EnqueueStatus::queued);
  CHECK(enqueue_one(*store, msg("a@example.com", "")).status == EnqueueStatus::queued);
  CHECK(store->counts(std::nullopt)[MessageState::queued] == 4);
  CHECK(store->counts(std::string("c1"))[MessageState::queued] == 1);
}

TEST_CASE_TEMPLATE("suppression scopes: one category, or all mail", B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  Suppression cat{"cat@example.com", "research-invitation", SuppressionReason::unsubscribe, "test",
                  0};
  Suppression all{"all@example.com", "", SuppressionReason::hard_bounce, "test", 0};
  using O = SuppressOutcome;
  CHECK(store->suppress(std::vector{cat, all}, 5) == std::vector{O::added, O::added});
  // The same request again changes nothing: the first record stays, the request is noted.
  CHECK(store->suppress(std::vector{cat}, 6) == std::vector{O::recorded});

  CHECK(enqueue_one(*store, msg("cat@example.com", "c1", "research-invitation")).status ==
        EnqueueStatus::suppressed);
  CHECK(enqueue_one(*store, msg("cat@example.com", "c1", "customer-update")).status ==
        EnqueueStatus::already_queued);
  CHECK(enqueue_one(*store, msg("cat@example.com", "c2", "customer-update")).status ==
        EnqueueStatus::queued);
  CHECK(enqueue_one(*store, msg("all@example.com", "c1", "customer-update")).status ==
        EnqueueStatus::suppressed);
  CHECK(enqueue_one(*store, msg("all@example.com", "c1", "research-invitation")).status ==
        EnqueueStatus::already_queued);

  auto found = store->find_suppression("cat@example.com", "research-invitation");
  REQUIRE(found);
  CHECK(found->created_at == 5);
  CHECK_FALSE(store->find_suppression("cat@example.com", "customer-update"));
  CHECK(store->find_suppression("all@example.com", "anything")->reason ==
        SuppressionReason::hard_bounce);

  auto removed = store->unsuppress("all@example.com", "", "test", 7, false);
  REQUIRE(removed.status == LiftStatus::lifted);
  CHECK(removed.suppression->reason == SuppressionReason::hard_bounce);
  CHECK(store->unsuppress("all@example.com", "", "test", 8, false).status == LiftStatus::not_found);
  CHECK(enqueue_one(*store, msg("all@example.com", "c3")).status == EnqueueStatus::queued);
}

TEST_CASE_TEMPLATE("claim, lease and outcomes", B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(msg("u" + std::to_string(i) + "@example.com"));
  auto ids = store->enqueue(batch, "test", 100);

  auto claimed = store->claim_due("owner-1", 3, 200, 60200);
  REQUIRE(claimed.size() == 3);
  CHECK(claimed[0].id == ids[0].id);
  CHECK(claimed[0].attempts == 1);
  CHECK(store->counts(std::nullopt)[MessageState::sending] == 3);
  // Leased messages are not claimed twice.
  CHECK(store->claim_due("owner-2", 10, 200, 60200).size() == 2);

  std::vector<Outcome> outcomes = {
      {claimed[0].id, MessageState::sent, 250, "2.0.0 Ok: queued", 0, "<m1@mail.example.com>",
       BounceClass::unknown},
      {claimed[1].id, MessageState::deferred, 451, "4.3.0 try later", 5000, "",
       BounceClass::unknown},
      {claimed[2].id, MessageState::failed, 550, "5.1.1 user unknown", 0, "", BounceClass::hard},
  };
  store->record_outcomes(outcomes, 300);
  CHECK(state_of(*db, claimed[0].id) == "sent");
  CHECK(state_of(*db, claimed[1].id) == "deferred");
  CHECK(state_of(*db, claimed[2].id) == "failed");
  // The hard bounce suppressed the address for all mail.
  auto sup = store->find_suppression("u2@example.com", "research-invitation");
  REQUIRE(sup);
  CHECK(sup->reason == SuppressionReason::hard_bounce);
  // Each outcome is in the recipient's history, with the message's names and the relay's reply.
  auto sent = store->history("u0@example.com");
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].type == "sent");
  CHECK(sent[1].message == claimed[0].id);
  CHECK(sent[1].category == "customer-update");
  CHECK(sent[1].campaign == "c1");
  CHECK(sent[1].source == "dispatcher");
  CHECK(sent[1].detail == "250 2.0.0 Ok: queued");
  auto bounced = store->history("u2@example.com");
  REQUIRE(bounced.size() == 3);
  CHECK(bounced[1].type == "failed");
  CHECK(bounced[1].detail == "550 5.1.1 user unknown");
  CHECK(bounced[2].type == "suppression-added");
  CHECK(bounced[2].category == "");
  CHECK(bounced[2].campaign == "c1");
  CHECK(bounced[2].detail == "hard-bounce (all mail): 550 5.1.1 user unknown");
  // Recording again changes nothing: the message is no longer `sending`.
  store->record_outcomes(std::vector<Outcome>{{claimed[0].id, MessageState::failed, 554, "x", 0, "",
                                               BounceClass::unknown}},
                         301);
  CHECK(state_of(*db, claimed[0].id) == "sent");

  // The deferred message comes due at its next attempt time, with its attempt counted.
  CHECK(store->claim_due("owner-1", 10, 4999, 70000).empty());
  auto again = store->claim_due("owner-1", 10, 5000, 70000);
  REQUIRE(again.size() == 1);
  CHECK(again[0].attempts == 2);
}

TEST_CASE_TEMPLATE("due retries are claimed ahead of a backlog due before them, up to a quarter", B,
                   BULKMAIL_STORE_BACKENDS) {
  // A campaign is due from its import on: in plain due order a retry would wait for all of it.
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch;
  for (int i = 0; i < 12; ++i) batch.push_back(msg("r" + std::to_string(i) + "@example.com"));
  store->enqueue(batch, "test", 100);
  auto first = store->claim_due("owner-1", 6, 200, 60200);
  REQUIRE(first.size() == 6);
  std::vector<Outcome> deferred;
  for (const auto& m : first) {
    deferred.push_back(
        {m.id, MessageState::deferred, 451, "4.7.1 try later", 1000, "", BounceClass::unknown});
  }
  store->record_outcomes(deferred, 300);
  std::vector<NewMessage> backlog;
  for (int i = 0; i < 50; ++i) backlog.push_back(msg("b" + std::to_string(i) + "@example.com"));
  store->enqueue(backlog, "test", 150);  // due at 150, before the retries (1000)

  // At 1000 the six retries are due: a claim of 8 takes two of them (a quarter) and the six
  // never claimed of the first batch (due at 100), oldest due first.
  auto claimed = store->claim_due("owner-1", 8, 1000, 61000);
  REQUIRE(claimed.size() == 8);
  int retries = 0;
  for (const auto& m : claimed) retries += m.attempts == 2 ? 1 : 0;
  CHECK(retries == 2);
  CHECK(claimed[0].attempts == 2);  // handed out in id order: the retries were queued first
  // The rest: four retries and the 50 of the backlog.
  CHECK(store->claim_due("owner-1", 100, 1000, 61000).size() == 4 + 50);
  // With no retry due, the retries' share does not hold room back: the claim is the backlog's.
  std::vector<NewMessage> late;
  for (int i = 0; i < 5; ++i) late.push_back(msg("late" + std::to_string(i) + "@example.com"));
  store->enqueue(late, "test", 2000);
  CHECK(store->claim_due("owner-1", 4, 2000, 62000).size() == 4);
}

TEST_CASE_TEMPLATE("a suppression added while a message waits wins at claim time", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  auto r = enqueue_one(*store, msg("late@example.com", "c1", "research-invitation"));
  // In the same claim: the same address in another category, and an all-mail opt-out.
  auto other_category = enqueue_one(*store, msg("late@example.com", "c2", "customer-update"));
  auto neighbour = enqueue_one(*store, msg("next@example.com", "c1", "research-invitation"));
  auto all_mail = enqueue_one(*store, msg("gone@example.com", "c1", "customer-update"));
  Suppression sups[] = {
      {"late@example.com", "research-invitation", SuppressionReason::unsubscribe, "one-click", 0},
      {"gone@example.com", "", SuppressionReason::manual, "test", 0}};
  store->suppress(sups, 1500);
  auto claimed = store->claim_due("o", 10, 2000, 9000);
  REQUIRE(claimed.size() == 2);
  CHECK(claimed[0].id == other_category.id);
  CHECK(claimed[1].id == neighbour.id);
  CHECK(state_of(*db, r.id) == "suppressed");
  CHECK(state_of(*db, all_mail.id) == "suppressed");
  auto h = store->history("late@example.com");
  REQUIRE(h.size() == 4);
  CHECK(h[0].type == "enqueued");
  CHECK(h[1].type == "enqueued");
  CHECK(h[2].type == "suppression-added");
  CHECK(h[3].type == "suppressed");
  CHECK(h[3].message == r.id);
  CHECK(h[3].detail == "recipient suppressed (unsubscribe)");
  CHECK(store->history("gone@example.com").back().detail ==
        "recipient suppressed (manual, all mail)");
}

TEST_CASE_TEMPLATE(
    "expired leases return to the queue as possible duplicates - released ones keep attempts", B,
    BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com")};
  store->enqueue(batch, "test", 0);
  auto claimed = store->claim_due("dead-daemon", 10, 10, 1000);
  REQUIRE(claimed.size() == 2);
  CHECK(store->recover_leases(999, 999, std::nullopt).possible_duplicates.empty());
  store->record_outcomes(std::vector<Outcome>{{claimed[1].id, MessageState::queued, 0,
                                               "shutting down", 0, "", BounceClass::unknown}},
                         500);
  auto recovered = store->recover_leases(1000, 1000, std::nullopt);
  REQUIRE(recovered.possible_duplicates.size() == 1);
  CHECK(recovered.possible_duplicates[0] == claimed[0].id);
  CHECK(store->history("a@example.com").back().type == "lease-expired");
  auto next = store->claim_due("new-daemon", 10, 1001, 2000);
  REQUIRE(next.size() == 2);
  for (const auto& m : next) CHECK(m.attempts == (m.id == claimed[0].id ? 2 : 1));
}

TEST_CASE_TEMPLATE("a live daemon renews its leases, a dead one's run out and are rescued", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto alive = db->open();
  auto other = db->open();  // a second daemon on the same database
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com"),
                                   msg("c@example.com")};
  alive->enqueue(batch, "test", 0);
  auto mine = alive->claim_due("host-a:1:x", 2, 10, 1000);
  auto theirs = other->claim_due("host-b:2:y", 2, 10, 1000);
  REQUIRE(mine.size() == 2);
  REQUIRE(theirs.size() == 1);
  // The heartbeat: only this daemon's messages still being sent, and never a lease shortened;
  // only those with less than two thirds of the new lease left.
  CHECK(alive->renew_leases("host-a:1:x", 1, 5000) == 2);
  CHECK(alive->renew_leases("host-a:1:x", 1, 4000) == 0);
  CHECK(alive->renew_leases("host-a:1:x", 10, 6000) == 0);  // 5000: over two thirds of it away
  alive->record_outcomes(std::vector<Outcome>{{mine[0].id, MessageState::sent, 250, "250 ok", 0, "",
                                               BounceClass::unknown}},
                         600);
  CHECK(alive->renew_leases("host-a:1:x", 4500, 6000) == 1);
  // At 1000 host-b has stopped renewing: its message is rescued, host-a's are not.
  auto rescued = alive->recover_leases(1000, 1000, std::nullopt);
  CHECK(rescued.possible_duplicates == std::vector<MessageId>{theirs[0].id});
  // Whose lease ran out is said, and kept in the message's history: whom to ask about it.
  CHECK(rescued.owners == std::vector<std::string>{"host-b:2:y"});
  auto expired = alive->history(theirs[0].recipient);
  REQUIRE_FALSE(expired.empty());
  CHECK(expired.back().type == "lease-expired");
  CHECK(expired.back().detail.find("(host-b:2:y)") != std::string::npos);
  CHECK(other->renew_leases("host-b:2:y", 1, 7000) == 0);  // too late: it is not host-b's any more
  auto next = other->claim_due("host-b:2:y", 10, 1001, 9000);
  REQUIRE(next.size() == 1);
  CHECK(next[0].id == theirs[0].id);
  // The first claim's sender was not dead after all: its late outcome ends no claim that still
  // holds the message, so it changes nothing; the second claim's outcome is the one recorded.
  Outcome late{theirs[0].id,
               MessageState::deferred,
               451,
               "451 late",
               2000,
               "",
               BounceClass::unknown,
               theirs[0].lease_owner,
               theirs[0].attempts};
  alive->record_outcomes(std::vector<Outcome>{late}, 1100);
  CHECK(other->renew_leases("host-b:2:y", 8600, 9500) == 1);  // still leased to the second claim
  Outcome done{next[0].id,          MessageState::sent, 250, "250 ok", 0, "", BounceClass::unknown,
               next[0].lease_owner, next[0].attempts};
  other->record_outcomes(std::vector<Outcome>{done}, 1200);
  CHECK(alive->find_message(next[0].id)->state == MessageState::sent);
  CHECK(alive->history("c@example.com").back().type == "sent");
}

TEST_CASE_TEMPLATE("cancel and retry a campaign", B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com"), msg("c@example.com"),
                                   msg("d@example.com", "other")};
  store->enqueue(batch, "test", 0);
  auto claimed = store->claim_due("o", 1, 1, 100);
  store->record_outcomes(std::vector<Outcome>{{claimed[0].id, MessageState::failed, 554, "refused",
                                               0, "", BounceClass::unknown}},
                         2);
  CHECK(store->retry_campaign("c1", "test", 3) == 1);
  CHECK(store->history(claimed[0].recipient).back().type == "requeued");
  CHECK(store->counts(std::string("c1"))[MessageState::queued] == 3);
  CHECK(store->cancel_campaign("c1", "test", 4) == 3);
  CHECK(store->counts(std::string("c1"))[MessageState::cancelled] == 3);
  CHECK(store->counts(std::string("other"))[MessageState::queued] == 1);
  CHECK(store->cancel_campaign("nope", "test", 5) == 0);
}

TEST_CASE_TEMPLATE("events are never changed, and a suppression's evidence is never deleted", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  enqueue_one(*store, msg("a@example.com"));
  Suppression sup{"b@example.com", "", SuppressionReason::unsubscribe, "one-click", 0};
  store->suppress({&sup, 1}, 2000);
  CHECK_THROWS_WITH(db->execute("UPDATE events SET type = 'x'"), doctest::Contains("append-only"));
  // Whoever deletes, by whatever statement: the schema keeps the evidence of a suppression in
  // force.
  CHECK_THROWS_WITH(db->execute("DELETE FROM events"), doctest::Contains("evidence"));
  CHECK(db->scalar("SELECT count(*) FROM events") == "2");
  // An event that is no evidence may go: exactly that one row.
  db->execute("DELETE FROM events WHERE address = 'a@example.com'");
  CHECK(db->scalar("SELECT count(*) FROM events") == "1");
  CHECK(db->scalar("SELECT count(*) FROM events WHERE address = 'a@example.com'") == "0");
}

TEST_CASE_TEMPLATE("dispatch state and sent counts", B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  CHECK_FALSE(store->dispatch_state());
  store->set_dispatch_state({"paused", "relay down", 5, ""});
  store->set_dispatch_state({"running", "", 6, ""});
  auto d = store->dispatch_state();
  REQUIRE(d);
  CHECK(d->state == "running");
  CHECK(d->updated_at == 6);
  CHECK(d->config_problem.empty());
  // A failed reload's problem stays through the dispatcher's own changes until it is cleared.
  store->set_config_problem("the config file is invalid (x)");
  store->set_dispatch_state({"paused", "daily limit reached", 7, ""});
  CHECK(store->dispatch_state()->config_problem == "the config file is invalid (x)");
  CHECK(store->dispatch_state()->state == "paused");
  store->set_config_problem("");
  CHECK(store->dispatch_state()->config_problem.empty());
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com")};
  store->enqueue(batch, "t", 0);
  auto c = store->claim_due("o", 10, 1, 100);
  store->record_outcomes(
      std::vector<Outcome>{
          {c[0].id, MessageState::sent, 250, "ok", 0, "", BounceClass::unknown},
          {c[1].id, MessageState::deferred, 451, "later", 50, "", BounceClass::unknown}},
      20);
  CHECK(store->count_sent_since(20) == 1);
  CHECK(store->count_sent_since(21) == 0);
}

TEST_CASE_TEMPLATE(
    "a lookup leaves no read open: the same connection can write after another one did", B,
    BULKMAIL_STORE_BACKENDS) {
  // The daemon's writer answers API lookups between its writes, while the CLI and other
  // connections commit in between.
  auto db = B::make();
  auto writer = db->open();
  auto other = db->open();
  Suppression a{"a@example.com", "", SuppressionReason::manual, "test", 0};
  Suppression b{"b@example.com", "", SuppressionReason::manual, "test", 0};
  writer->suppress({&a, 1}, 1);
  REQUIRE(writer->find_suppression("a@example.com", "customer-update"));
  other->suppress({&b, 1}, 2);
  Suppression c{"c@example.com", "", SuppressionReason::manual, "test", 0};
  CHECK(writer->suppress({&c, 1}, 3) == std::vector{SuppressOutcome::added});
  CHECK(writer->find_suppression("b@example.com", "customer-update"));  // sees the other's commit
}

TEST_CASE_TEMPLATE("suppression changes since an event, in order, from every writer", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  CHECK(store->last_event_id() == 0);
  enqueue_one(*store, msg("a@example.com"));
  std::int64_t start = store->last_event_id();
  CHECK(start > 0);
  CHECK(store->suppression_changes(start).changes.empty());
  CHECK(store->suppression_changes(start).last == start);

  auto other = db->open();  // bulkmailctl, say
  Suppression one{"pat@example.com", "research-invitation", SuppressionReason::unsubscribe, "cli",
                  0};
  Suppression all{"sam@example.com", "", SuppressionReason::complaint, "cli", 0};
  other->suppress(std::vector<Suppression>{one, all}, 2000);
  enqueue_one(*other, msg("b@example.com"));  // a later event that is not a suppression
  other->unsuppress("pat@example.com", "research-invitation", "cli", 3000, true);

  auto c = store->suppression_changes(start);
  REQUIRE(c.changes.size() == 3);
  CHECK(c.changes[0].added);
  CHECK(c.changes[0].suppression.address == "pat@example.com");
  CHECK(c.changes[0].suppression.category == "research-invitation");
  CHECK(c.changes[1].added);
  CHECK(c.changes[1].suppression.category.empty());
  CHECK(c.changes[1].suppression.reason == SuppressionReason::complaint);
  CHECK(c.changes[1].suppression.source == "cli");
  CHECK_FALSE(c.changes[2].added);
  CHECK(c.changes[2].suppression.address == "pat@example.com");
  CHECK(c.last == store->last_event_id());
  // Looking again from where the last look ended finds nothing new.
  CHECK(store->suppression_changes(c.last).changes.empty());
  CHECK(store->suppression_changes(c.last).last == c.last);
}

TEST_CASE_TEMPLATE("after a crash, only messages whose delivery had begun are possible duplicates",
                   B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch = {msg("a@example.com"), msg("b@example.com"),
                                   msg("c@example.com")};
  store->enqueue(batch, "test", 0);
  auto claimed = store->claim_due("dead-daemon", 10, 10, 1000);
  REQUIRE(claimed.size() == 3);
  // Only b's sender had begun to hand it to the relay.
  auto recovered = store->recover_leases(1000, 1000, std::vector<MessageId>{claimed[1].id});
  CHECK(recovered.possible_duplicates == std::vector<MessageId>{claimed[1].id});
  CHECK(recovered.never_tried == 2);
  CHECK(store->history("a@example.com").back().type == "released");
  CHECK(store->history("b@example.com").back().type == "lease-expired");
  // a and c get back the attempt their claim took; b's was spent.
  auto next = store->claim_due("new-daemon", 10, 1001, 2000);
  REQUIRE(next.size() == 3);
  for (const auto& m : next) CHECK(m.attempts == (m.id == claimed[1].id ? 2 : 1));
}

TEST_CASE_TEMPLATE("history: a relay's reply line is recorded once, its code not repeated", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  enqueue_one(*store, msg("sent@example.com"), 100);
  enqueue_one(*store, msg("gone@example.com"), 100);
  auto claimed = store->claim_due("owner", 2, 200, 60200);
  REQUIRE(claimed.size() == 2);
  // As classify_attempt() writes them: the whole reply line, its code first.
  store->record_outcomes(
      std::vector<Outcome>{
          {claimed[0].id, MessageState::sent, 250, "250 2.0.0 Ok: queued as 4Xk9", 0, "",
           BounceClass::unknown},
          {claimed[1].id, MessageState::failed, 550, "550 5.1.1 <gone@example.com>: no such user",
           0, "", BounceClass::hard}},
      300);
  auto sent = store->history("sent@example.com");
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].detail == "250 2.0.0 Ok: queued as 4Xk9");
  auto gone = store->history("gone@example.com");
  REQUIRE(gone.size() == 3);
  CHECK(gone[1].detail == "550 5.1.1 <gone@example.com>: no such user");
  CHECK(gone[2].detail == "hard-bounce (all mail): 550 5.1.1 <gone@example.com>: no such user");
}

TEST_CASE_TEMPLATE("a person's own opt-out is never lost behind a suppression that already exists",
                   B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  using O = SuppressOutcome;
  auto one = [&](const char* address, const char* category, SuppressionReason reason,
                 const char* source, UnixMillis at) {
    Suppression x{address, category, reason, source, 0};
    return store->suppress({&x, 1}, at).front();
  };
  // The operator suppressed Mia's customer updates; then Mia opts out herself.
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::manual, "cli", 100) ==
        O::added);
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::unsubscribe, "one-click",
            200) == O::raised);
  auto now = store->find_suppression("mia@example.com", "customer-update");
  REQUIRE(now);
  CHECK(now->reason == SuppressionReason::unsubscribe);
  CHECK(now->source == "one-click");
  CHECK(now->created_at == 100);  // suppressed since the first record
  // Her request is in the evidence, and lifting now needs her consent.
  auto h = store->history("mia@example.com");
  REQUIRE(h.size() == 2);
  CHECK(h[1].type == "suppression-added");
  CHECK(h[1].source == "one-click");
  CHECK(h[1].detail.find("unsubscribe, raised from manual") != std::string::npos);
  CHECK(store->unsuppress("mia@example.com", "customer-update", "cli", 300, false).status ==
        LiftStatus::needs_consent);
  // The same request again, or a weaker reason: recorded, or nothing at all.
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::unsubscribe, "web", 400) ==
        O::recorded);
  CHECK(store->history("mia@example.com").back().type == "suppression-requested");
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::manual, "cli", 500) ==
        O::unchanged);
  CHECK(store->history("mia@example.com").size() == 3);
  // A complaint says more than an unsubscribe.
  CHECK(one("mia@example.com", "customer-update", SuppressionReason::complaint, "fbl", 600) ==
        O::raised);
  // An all-mail suppression covers a category opt-out; the opt-out is still its own record.
  CHECK(one("leo@example.com", "", SuppressionReason::hard_bounce, "smtp", 700) == O::added);
  CHECK(one("leo@example.com", "research-invitation", SuppressionReason::unsubscribe, "one-click",
            800) == O::added);
  CHECK(store->history("leo@example.com").back().source == "one-click");
}

TEST_CASE_TEMPLATE(
    "campaigns: created with their first message or import, listed with their counts", B,
    BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  CHECK(store->campaigns().empty());
  CHECK_FALSE(store->campaign("november"));
  // An import opens its campaign first, recording the file the name came from.
  Campaign nov = store->open_campaign("november", "/lists/nov/november.csv", 500);
  CHECK(nov.origin == "/lists/nov/november.csv");
  CHECK(nov.created_at == 500);
  CHECK(nov.last_activity == 500);
  // Opening it again keeps its origin: the caller sees whose name it is.
  CHECK(store->open_campaign("november", "/lists/dec/november.csv", 600).origin ==
        "/lists/nov/november.csv");
  std::vector<NewMessage> batch = {msg("a@example.com", "november"),
                                   msg("b@example.com", "november"), msg("c@example.com", "ad-hoc"),
                                   msg("d@example.com", "")};
  store->enqueue(batch, "test", 1000);
  store->cancel_campaign("ad-hoc", "test", 2000);
  auto all = store->campaigns();
  REQUIRE(all.size() == 2);  // a message outside any campaign makes none
  CHECK(all[0].name == "november");
  CHECK(all[0].counts[MessageState::queued] == 2);
  CHECK(all[0].last_activity == 1000);
  CHECK(all[1].name == "ad-hoc");
  CHECK(all[1].origin == "");  // named by enqueue
  CHECK(all[1].created_at == 1000);
  CHECK(all[1].counts[MessageState::cancelled] == 1);
  CHECK(all[1].last_activity == 2000);
}

TEST_CASE_TEMPLATE(
    "a paused campaign's messages wait, whatever makes them due, until it is resumed", B,
    BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch = {msg("a@example.com", "nov"), msg("b@example.com", "nov"),
                                   msg("c@example.com", "nov"), msg("x@example.com", "other")};
  store->enqueue(batch, "test", 100);
  // b and c are being sent when the campaign is paused.
  auto claimed = store->claim_due("o", 2, 200, 60200);
  REQUIRE(claimed.size() == 2);
  REQUIRE(claimed[1].recipient == "b@example.com");
  CHECK(store->set_campaign_paused("nov", true, 300) == 1);  // c's message held
  CHECK(store->set_campaign_paused("nov", true, 301) == 0);  // already paused
  CHECK_FALSE(store->set_campaign_paused("nope", true, 301));
  CHECK(store->campaign("nov")->paused_at == 300);
  // a's delivery is deferred, b's lease is recovered, a new recipient joins, and a retry: none of
  // them makes a message of the paused campaign due; the other campaign goes on.
  store->record_outcomes(std::vector<Outcome>{{claimed[0].id, MessageState::deferred, 451, "later",
                                               400, "", BounceClass::unknown}},
                         350);
  store->recover_leases(1'000'000, 360, std::vector<MessageId>{});
  NewMessage late = msg("d@example.com", "nov");
  store->enqueue({&late, 1}, "test", 370);
  store->retry_campaign("nov", "test", 380);
  auto due = store->claim_due("o", 10, 1'000'000'000'000, 1'000'000'060'000);
  REQUIRE(due.size() == 1);
  CHECK(due[0].recipient == "x@example.com");
  CHECK(store->campaign("nov")->counts[MessageState::queued] == 4);  // states unchanged by a pause
  // Resumed, all four are due again, in their order.
  CHECK(store->set_campaign_paused("nov", false, 400) == 4);
  CHECK_FALSE(store->campaign("nov")->paused_at);
  auto released = store->claim_due("o", 10, 1000, 61000);
  CHECK(released.size() == 4);
}

TEST_CASE_TEMPLATE(
    "retention deletes finished messages and old events in batches, never the evidence", B,
    BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(msg("u" + std::to_string(i) + "@example.com"));
  auto ids = store->enqueue(batch, "test", 1000);  // 5 enqueued events at 1000
  auto claimed = store->claim_due("o", 3, 1000, 61000);
  REQUIRE(claimed.size() == 3);
  store->record_outcomes(
      std::vector<Outcome>{
          {claimed[0].id, MessageState::sent, 250, "ok", 0, "", BounceClass::unknown},
          {claimed[1].id, MessageState::failed, 550, "no", 0, "", BounceClass::hard},
          {claimed[2].id, MessageState::deferred, 451, "later", 9000, "", BounceClass::unknown}},
      2000);  // u1's hard bounce suppresses it: its suppression-added event is evidence
  Suppression lifted{"u4@example.com", "", SuppressionReason::manual, "cli", 0};
  store->suppress({&lifted, 1}, 2100);
  store->unsuppress("u4@example.com", "", "cli", 2200, true);

  // Nothing is older than the cutoffs: nothing goes.
  CHECK(store->prune(1000, 1000, 100).messages == 0);
  // A cutoff of nullopt keeps that kind entirely.
  auto none = store->prune(std::nullopt, std::nullopt, 100);
  CHECK((none.messages == 0 && none.events == 0));
  // Batches of 1: one finished message (sent, then failed) at a time; the deferred and the
  // queued ones stay.
  CHECK(store->prune(5000, std::nullopt, 1).messages == 1);
  CHECK(store->prune(5000, std::nullopt, 1).messages == 1);
  CHECK(store->prune(5000, std::nullopt, 1).messages == 0);
  auto left = store->counts(std::nullopt);
  CHECK(left[MessageState::sent] == 0);
  CHECK(left[MessageState::failed] == 0);
  CHECK(left[MessageState::deferred] == 1);
  CHECK(left[MessageState::queued] == 2);
  // Events: everything before the cutoff but u1's hard-bounce evidence (u1 is still suppressed);
  // u4's lifted suppression's events are no longer evidence of anything in force.
  PruneResult r;
  std::int64_t events = 0;
  do {
    r = store->prune(std::nullopt, 3000, 2);
    events += r.events;
  } while (r.more);
  CHECK(events == 10);  // 5 enqueued, 3 outcomes, u4's suppression added and lifted
  auto u1 = store->history("u1@example.com");
  REQUIRE(u1.size() == 1);
  CHECK(u1[0].type == "suppression-added");
  CHECK(store->history("u4@example.com").empty());
  CHECK(store->find_suppression("u1@example.com", "customer-update"));
}

TEST_CASE_TEMPLATE("forget erases an address but keeps its suppressions under a salted hash", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  enqueue_one(*store, msg("mia@example.com", "nov"), 1000);
  enqueue_one(*store, msg("mia@example.com", "dec"), 1100);
  enqueue_one(*store, msg("other@example.com", "dec"), 1100);
  Suppression sup{"mia@example.com", "research-invitation", SuppressionReason::unsubscribe,
                  "one-click", 0};
  store->suppress({&sup, 1}, 1200);

  ForgetResult r = store->forget("mia@example.com", "cli", 2000);
  CHECK(r.messages == 2);
  CHECK(r.events == 3);  // two enqueued, one suppression-added
  REQUIRE(r.suppressions.size() == 1);
  CHECK(r.suppressions[0].category == "research-invitation");
  CHECK(r.suppressions[0].reason == SuppressionReason::unsubscribe);
  CHECK(r.suppressions[0].created_at == 1200);  // the evidence of when keeps its time
  CHECK(r.key.rfind("forgotten:", 0) == 0);
  CHECK(r.key.size() == 10 + 64);
  CHECK(r.key == store->forgotten_key("mia@example.com"));
  CHECK(r.key != store->forgotten_key("other@example.com"));

  // Nothing in the database holds the address any more, in any table.
  for (const char* q : {"SELECT count(*) FROM messages WHERE recipient LIKE '%mia%'",
                        "SELECT count(*) FROM events WHERE address LIKE '%mia%' OR detail LIKE "
                        "'%mia%'",
                        "SELECT count(*) FROM suppressions WHERE address LIKE '%mia%'"}) {
    CAPTURE(q);
    CHECK(db->scalar(q) == "0");
  }
  CHECK(store->counts(std::nullopt)[MessageState::queued] == 1);  // other's message stays
  // Her history is one event that holds no personal data.
  auto h = store->history("mia@example.com");
  REQUIRE(h.size() == 1);
  CHECK(h[0].type == "forgotten");
  CHECK(h[0].address == r.key);
  CHECK(h[0].detail == "erased 2 messages and 3 events; 1 suppression kept under this key");
  // A later import of her address is still suppressed, for that category only.
  CHECK(enqueue_one(*store, msg("mia@example.com", "jan", "research-invitation"), 3000).status ==
        EnqueueStatus::suppressed);
  CHECK(enqueue_one(*store, msg("mia@example.com", "feb", "customer-update"), 3000).status ==
        EnqueueStatus::queued);
  // Lifting it still needs her consent, found by the address she gives.
  CHECK(store->unsuppress("mia@example.com", "research-invitation", "cli", 3100, false).status ==
        LiftStatus::needs_consent);
  // The salt is the database's own: another database hashes her differently.
  auto other = B::make();
  CHECK(other->open()->forgotten_key("mia@example.com") != r.key);
  // Her import in January stored nothing of her: no row, and the event is under the key.
  CHECK(db->scalar("SELECT count(*) FROM messages WHERE campaign = 'jan'") == "0");
  // A one-click from a message sent before the forget keeps her forgotten: stored under the key.
  Suppression later{"mia@example.com", "", SuppressionReason::unsubscribe, "one-click", 0};
  // ... except that February's message holds her address in clear again, so it goes there.
  store->suppress({&later, 1}, 3200);
  CHECK(db->scalar("SELECT count(*) FROM suppressions WHERE address = 'mia@example.com'") == "1");
  // Forgetting her again moves that one too, and reports every suppression kept under the key.
  auto again = store->forget("mia@example.com", "cli", 4000);
  REQUIRE(again.suppressions.size() == 2);
  CHECK(again.suppressions[0].category == "");
  CHECK(again.suppressions[1].category == "research-invitation");
  CHECK(again.suppressions[1].created_at == 1200);  // the older record kept
  CHECK(again.messages == 1);                       // February's customer update
  // Now nothing holds her in clear: a new opt-out of hers is kept under the key at once.
  Suppression third{"mia@example.com", "customer-update", SuppressionReason::unsubscribe,
                    "one-click", 0};
  store->suppress({&third, 1}, 4100);
  CHECK(db->scalar("SELECT count(*) FROM suppressions WHERE address LIKE '%mia%'") == "0");
  CHECK(db->scalar("SELECT count(*) FROM suppressions") == "3");
  // Forgetting someone never stored records nothing.
  auto nobody = store->forget("nobody@example.com", "cli", 4200);
  CHECK((nobody.messages == 0 && nobody.events == 0 && nobody.suppressions.empty()));
  CHECK(store->history("nobody@example.com").empty());
  // And the evidence kept under the key is kept against retention too.
  store->prune(std::nullopt, 1'000'000, 100);
  CHECK(store->history("mia@example.com").size() >= 1);
}

TEST_CASE_TEMPLATE("a second forget keeps the person's own opt-out over an older weaker record", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  // Forgotten once with a manual suppression of the newsletter kept under the key.
  Suppression manual{"kim@example.com", "news", SuppressionReason::manual, "cli", 1000};
  store->suppress({&manual, 1}, 1000);
  store->forget("kim@example.com", "test", 2000);
  // Mailed again (another category), then her own unsubscribe from the newsletter: in clear,
  // since a message holds the address.
  enqueue_one(*store, msg("kim@example.com", "promo", "customer-update"), 3000);
  Suppression own{"kim@example.com", "news", SuppressionReason::unsubscribe, "one-click", 4000};
  store->suppress({&own, 1}, 4000);
  // Forgotten again: her unsubscribe is what stays, with the first time the newsletter stopped.
  auto r = store->forget("kim@example.com", "test", 5000);
  REQUIRE(r.suppressions.size() == 1);
  CHECK(r.suppressions[0].reason == SuppressionReason::unsubscribe);
  CHECK(r.suppressions[0].source == "one-click");
  CHECK(r.suppressions[0].created_at == 1000);
  auto found = store->find_suppression("kim@example.com", "news");
  REQUIRE(found);
  CHECK(found->reason == SuppressionReason::unsubscribe);
}

TEST_CASE_TEMPLATE("forget says which of the messages it erased were being sent", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  enqueue_one(*store, msg("mia@example.com", "nov"), 1000);
  enqueue_one(*store, msg("mia@example.com", "dec"), 1000);
  auto claimed = store->claim_due("o", 1, 1000, 61000);
  REQUIRE(claimed.size() == 1);
  auto r = store->forget("mia@example.com", "cli", 2000);
  CHECK(r.messages == 2);
  CHECK(r.in_flight == 1);
  // The daemon's outcome for it finds no row: nothing of her is written back.
  store->record_outcomes(std::vector<Outcome>{{claimed[0].id, MessageState::sent, 250, "ok", 0, "",
                                               BounceClass::unknown}},
                         3000);
  CHECK(store->history("mia@example.com").size() == 1);  // the forgotten event only
}

TEST_CASE_TEMPLATE("a message id is never given again once its message is deleted", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  auto first = enqueue_one(*store, msg("a@example.com"), 1000).id;
  auto newest = enqueue_one(*store, msg("b@example.com"), 1000).id;
  store->forget("b@example.com", "cli", 2000);  // deletes the newest message
  auto next = enqueue_one(*store, msg("c@example.com"), 3000).id;
  CHECK(next > newest);
  CHECK(newest > first);
}

// --- what comes back by mail (store.h: find_message*, record_reports) ---

namespace {

int digest_counter = 0;
ReceivedReport report(std::vector<Feedback> feedback, std::vector<std::string> counters = {}) {
  ReceivedReport r;
  r.digest = "digest-" + std::to_string(++digest_counter);
  r.feedback = std::move(feedback);
  r.counters = std::move(counters);
  r.source = "bounce-test";
  return r;
}

Feedback hard(MessageId id) {
  return {id, FeedbackKind::hard_bounce, "5.1.1", "550 5.1.1 user unknown", "mx.example.com"};
}
Feedback of_kind(MessageId id, FeedbackKind k, const std::string& status) {
  return {id, k, status, "", "mx.example.com"};
}

ReportRecorded record_one(Store& s, ReceivedReport r, UnixMillis now = 20'000,
                          const FeedbackPolicy& p = {}) {
  return s.record_reports({&r, 1}, p, now).front();
}

std::int64_t counter(Store& s, const std::string& name) {
  for (auto& [n, v] : s.feedback_counters()) {
    if (n == name) return v;
  }
  return 0;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "a sent message is found by its id and by its Message-ID, a queued one is no target", B,
    BULKMAIL_STORE_BACKENDS) {
  SentQueueOn<B> q(2);
  auto m = q.store->find_message(q.ids[0]);
  REQUIRE(m);
  CHECK(m->recipient == "r0@example.com");
  CHECK(m->campaign == "nov");
  CHECK(m->state == MessageState::sent);
  CHECK(m->sent_at == 10'000);
  CHECK(takes_reports(m->state));
  auto by_header =
      q.store->find_message_by_header("<" + std::to_string(q.ids[1]) + "@mail.example.com>");
  REQUIRE(by_header);
  CHECK(by_header->id == q.ids[1]);
  CHECK_FALSE(q.store->find_message_by_header("<never@mail.example.com>"));
  CHECK_FALSE(q.store->find_message_by_header(""));
  CHECK_FALSE(q.store->find_message(99'999));
  auto to = q.store->find_message_sent_to("r1@example.com", "customer-update", 9'000);
  REQUIRE(to);
  CHECK(to->id == q.ids[1]);
  CHECK_FALSE(q.store->find_message_sent_to("r1@example.com", "customer-update", 10'001));
  CHECK_FALSE(q.store->find_message_sent_to("r1@example.com", "research-invitation", 0));

  NewMessage waiting{"nov", "customer-update", "later@example.com", "{}"};
  auto e = q.store->enqueue({&waiting, 1}, "test", 30'000).front();
  auto w = q.store->find_message(e.id);
  REQUIRE(w);
  CHECK_FALSE(takes_reports(w->state));
  auto r = record_one(*q.store, report({hard(e.id)}));
  REQUIRE(r.applied.size() == 1);
  CHECK_FALSE(r.applied[0].applied);  // never handed to the relay: nothing happens
  CHECK_FALSE(q.store->find_suppression("later@example.com", "customer-update"));
}

TEST_CASE_TEMPLATE(
    "a hard bounce: the message becomes bounced, the address suppressed, the history says so", B,
    BULKMAIL_STORE_BACKENDS) {
  SentQueueOn<B> q(3);
  auto r = record_one(*q.store, report({hard(q.ids[0])}, {"report:bounce", "class:hard"}));
  CHECK_FALSE(r.duplicate);
  REQUIRE(r.applied.size() == 1);
  CHECK(r.applied[0].applied);
  CHECK(r.applied[0].suppressed);
  auto m = q.store->find_message(q.ids[0]);
  CHECK(m->state == MessageState::bounced);
  CHECK(m->feedback == "hard");
  CHECK(m->sent_at == 10'000);  // the time it was sent stays
  auto sup = q.store->find_suppression("r0@example.com", "research-invitation");
  REQUIRE(sup);
  CHECK(sup->category.empty());
  CHECK(sup->reason == SuppressionReason::hard_bounce);
  CHECK(sup->source == "bounce-test");
  auto h = q.store->history("r0@example.com");
  bool saw_event = false;
  for (const Event& e : h) {
    if (e.type == "hard-bounce") {
      saw_event = true;
      CHECK(e.detail == "5.1.1 from mx.example.com: 550 5.1.1 user unknown");
      CHECK(e.message == q.ids[0]);
      CHECK(e.campaign == "nov");
      CHECK(e.source == "bounce-test");
    }
  }
  CHECK(saw_event);
  // The daily limit still counts it as sent today.
  CHECK(q.store->count_sent_since(10'000) == 3);
  // Nothing else changed.
  CHECK(q.store->find_message(q.ids[1])->state == MessageState::sent);
  CHECK_FALSE(q.store->find_suppression("r1@example.com", "customer-update"));
  auto c = q.store->campaign("nov");
  CHECK(c->counts[MessageState::bounced] == 1);
  CHECK(c->counts[MessageState::sent] == 2);
  CHECK(c->feedback.answered == 3);
  CHECK(c->feedback.hard_bounces == 1);
  CHECK(counter(*q.store, "report:bounce") == 1);
  CHECK(counter(*q.store, "class:hard") == 1);
}

TEST_CASE_TEMPLATE("the same report twice counts once", B, BULKMAIL_STORE_BACKENDS) {
  SentQueueOn<B> q(1);
  ReceivedReport r = report({hard(q.ids[0])}, {"report:bounce"});
  CHECK_FALSE(record_one(*q.store, r).duplicate);
  auto again = record_one(*q.store, r);
  CHECK(again.duplicate);
  CHECK(again.applied.empty());
  CHECK(counter(*q.store, "report:bounce") == 1);
  CHECK(counter(*q.store, "duplicate") == 1);
  int events = 0;
  for (const Event& e : q.store->history("r0@example.com")) events += e.type == "hard-bounce";
  CHECK(events == 1);
}

TEST_CASE_TEMPLATE(
    "a complaint suppresses all mail at once, over an unsubscribe, and not-spam only records", B,
    BULKMAIL_STORE_BACKENDS) {
  SentQueueOn<B> q(2);
  Suppression unsub{"r0@example.com", "customer-update", SuppressionReason::unsubscribe,
                    "one-click", 0};
  q.store->suppress({&unsub, 1}, 15'000);
  auto r = record_one(*q.store, report({of_kind(q.ids[0], FeedbackKind::complaint, "abuse")}));
  CHECK(r.applied.at(0).suppressed);
  CHECK(q.store->find_message(q.ids[0])->state == MessageState::complained);
  auto sup = q.store->find_suppression("r0@example.com", "research-invitation");
  REQUIRE(sup);
  CHECK(sup->reason == SuppressionReason::complaint);
  CHECK(q.store->campaign("nov")->feedback.complaints == 1);

  auto note =
      record_one(*q.store, report({of_kind(q.ids[1], FeedbackKind::complaint_note, "not-spam")}));
  CHECK(note.applied.at(0).applied);
  CHECK_FALSE(note.applied.at(0).suppressed);
  CHECK(q.store->find_message(q.ids[1])->state == MessageState::sent);
  CHECK(q.store->find_message(q.ids[1])->feedback.empty());
  CHECK_FALSE(q.store->find_suppression("r1@example.com", "customer-update"));
  bool noted = false;
  for (const Event& e : q.store->history("r1@example.com")) noted |= e.type == "complaint-note";
  CHECK(noted);
}

TEST_CASE_TEMPLATE("a block is counted for the campaign and suppresses nobody", B,
                   BULKMAIL_STORE_BACKENDS) {
  SentQueueOn<B> q(2);
  auto r = record_one(*q.store, report({of_kind(q.ids[0], FeedbackKind::policy_block, "5.7.1")}));
  CHECK_FALSE(r.applied.at(0).suppressed);
  CHECK(q.store->find_message(q.ids[0])->state == MessageState::sent);
  CHECK(q.store->campaign("nov")->feedback.blocks == 1);
  CHECK_FALSE(q.store->find_suppression("r0@example.com", "customer-update"));
}

TEST_CASE_TEMPLATE(
    "soft bounces: the third in a row suppresses, a delivery between them breaks the run", B,
    BULKMAIL_STORE_BACKENDS) {
  FeedbackPolicy p;
  SentQueueOn<B> q(0);
  // Three messages to one address, in three campaigns, sent a day apart.
  const UnixMillis day = 24LL * 3600 * 1000;
  for (int i = 0; i < 3; ++i) q.add(1, 10'000 + i * day, "c" + std::to_string(i), "full");
  auto soft = [&](MessageId id, UnixMillis now) {
    return record_one(*q.store, report({of_kind(id, FeedbackKind::soft_bounce, "5.2.2")}), now, p)
        .applied.at(0);
  };
  CHECK(soft(q.ids[0], 20'000).soft_count == 1);
  // The delay notice and then the failure of the same message count once.
  CHECK(soft(q.ids[0], 30'000).soft_count == 1);
  CHECK(soft(q.ids[1], day + 20'000).soft_count == 2);
  // Message 0's final failure after message 1's report: counted before, the run stays at 2.
  CHECK(soft(q.ids[0], day + 30'000).soft_count == 2);
  CHECK_FALSE(q.store->find_suppression("full0@example.com", "customer-update"));
  auto third = soft(q.ids[2], 2 * day + 20'000);
  CHECK(third.soft_count == 3);
  CHECK(third.suppressed);
  auto sup = q.store->find_suppression("full0@example.com", "customer-update");
  REQUIRE(sup);
  CHECK(sup->reason == SuppressionReason::soft_bounce);
  CHECK(sup->category.empty());

  // Another address: a message between two bounced ones that nobody reported was delivered.
  q.add(1, 10'000, "d0", "ok");
  q.add(1, 10'000 + day, "d1", "ok");
  q.add(1, 10'000 + 2 * day, "d2", "ok");
  std::size_t n = q.ids.size();
  CHECK(soft(q.ids[n - 3], 20'000).soft_count == 1);
  CHECK(soft(q.ids[n - 1], 2 * day + 20'000).soft_count == 1);  // ids[n - 2] went through
  CHECK_FALSE(q.store->find_suppression("ok0@example.com", "customer-update"));
}

TEST_CASE_TEMPLATE(
    "a campaign pauses itself at exactly its complaint rate, and a person resumes it", B,
    BULKMAIL_STORE_BACKENDS) {
  FeedbackPolicy p;
  p.min_sample = 1000;
  SentQueueOn<B> q(1000);
  NewMessage waiting{"nov", "customer-update", "waiting@example.com", "{}"};
  q.store->enqueue({&waiting, 1}, "test", 15'000);
  for (int i = 0; i < 2; ++i) {
    auto r = record_one(*q.store, report({of_kind(q.ids[i], FeedbackKind::complaint, "abuse")}),
                        20'000, p);
    CHECK(r.applied.at(0).paused_campaign.empty());
    CHECK_FALSE(q.store->campaign("nov")->paused_at);
  }
  auto third = record_one(*q.store, report({of_kind(q.ids[2], FeedbackKind::complaint, "abuse")}),
                          21'000, p);
  CHECK(third.applied.at(0).paused_campaign == "nov");
  CHECK(third.applied.at(0).pause_reason ==
        "complaint rate 0.30% (3 of 1000 answered) reached bounces.pause_complaint_rate 0.3%");
  auto c = q.store->campaign("nov");
  REQUIRE(c->paused_at);
  CHECK(*c->paused_at == 21'000);
  CHECK(c->pause_reason == third.applied.at(0).pause_reason);
  CHECK(counter(*q.store, "auto-pause") == 1);
  // Its waiting message is not claimed while it is paused.
  CHECK(q.store->claim_due("test", 10, 22'000, 80'000).empty());

  // A person resumes it: the reason goes, and what came before no longer counts.
  CHECK(q.store->set_campaign_paused("nov", false, 23'000) == 1);
  c = q.store->campaign("nov");
  CHECK_FALSE(c->paused_at);
  CHECK(c->pause_reason.empty());
  CHECK(c->feedback.complaints == 3);
  CHECK(c->feedback_since_resume.complaints == 0);
  CHECK(c->feedback_since_resume.answered == 0);
  auto fourth = record_one(*q.store, report({of_kind(q.ids[3], FeedbackKind::complaint, "abuse")}),
                           24'000, p);
  CHECK(fourth.applied.at(0).paused_campaign.empty());
  CHECK_FALSE(q.store->campaign("nov")->paused_at);
  // A late complaint about a message sent before the resume counts in the campaign's rates, not
  // in what the automatic pause judges now.
  c = q.store->campaign("nov");
  CHECK(c->feedback.complaints == 4);
  CHECK(c->feedback_since_resume.complaints == 0);
  CHECK(q.store->claim_due("test", 10, 25'000, 80'000).size() == 1);

  // Messages answered after the resume are judged on their own: 10 sent, then a complaint about
  // one of them trips the pause again (1 of 10 with a sample of 10 and a 10% line).
  p.min_sample = 10;
  p.pause_complaint_ppm = 100'000;
  q.add(10, 30'000, "nov", "after");
  c = q.store->campaign("nov");
  CHECK(c->feedback_since_resume.answered == 10);
  auto late = record_one(*q.store, report({of_kind(q.ids[4], FeedbackKind::complaint, "abuse")}),
                         31'000, p);
  CHECK(late.applied.at(0).paused_campaign.empty());  // before the resume: not judged
  auto after = record_one(
      *q.store, report({of_kind(q.ids.back(), FeedbackKind::complaint, "abuse")}), 32'000, p);
  CHECK(after.applied.at(0).paused_campaign == "nov");
  CHECK(after.applied.at(0).pause_reason.find("(1 of 10 answered)") != std::string::npos);
}

TEST_CASE_TEMPLATE("a refusal in the SMTP transaction counts in the campaign's rates", B,
                   BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch = {{"nov", "customer-update", "dead@example.com", "{}"},
                                   {"nov", "customer-update", "blocked@example.com", "{}"}};
  store->enqueue(batch, "test", 1000);
  auto c = store->claim_due("test", 2, 2000, 60'000);
  REQUIRE(c.size() == 2);
  store->record_outcomes(
      std::vector<Outcome>{
          {c[0].id, MessageState::failed, 550, "550 5.1.1", 0, "", BounceClass::hard},
          {c[1].id, MessageState::failed, 554, "554 5.7.1", 0, "", BounceClass::policy}},
      3000);
  auto camp = store->campaign("nov");
  CHECK(camp->feedback.answered == 2);
  CHECK(camp->feedback.hard_bounces == 1);
  CHECK(camp->feedback.blocks == 1);
  CHECK(store->find_suppression("dead@example.com", "customer-update"));
  CHECK_FALSE(store->find_suppression("blocked@example.com", "customer-update"));
}

TEST_CASE_TEMPLATE("forgetting an address ends its soft-bounce run", B, BULKMAIL_STORE_BACKENDS) {
  SentQueueOn<B> q(1);
  record_one(*q.store, report({of_kind(q.ids[0], FeedbackKind::soft_bounce, "4.2.2")}));
  CHECK(q.db->scalar("SELECT count(*) FROM soft_bounces") == "1");  // the run it starts
  q.store->forget("r0@example.com", "cli", 30'000);
  CHECK(q.db->scalar("SELECT count(*) FROM soft_bounces") == "0");
}

TEST_CASE_TEMPLATE("blocks in the SMTP transaction pause a campaign once a feedback policy is set",
                   B, BULKMAIL_STORE_BACKENDS) {
  auto db = B::make();
  auto store = db->open();
  std::vector<NewMessage> batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back({"nov", "customer-update", "b" + std::to_string(i) + "@example.com", "{}"});
  }
  store->enqueue(batch, "test", 1000);
  auto c = store->claim_due("test", 4, 2000, 60'000);
  REQUIRE(c.size() == 4);
  auto block = [&](std::size_t i) {
    return Outcome{c[i].id, MessageState::failed, 554, "554 5.7.1 blocked", 0,
                   "",      BounceClass::policy};
  };
  // Without a policy (bulkmailctl, a test): counted, nothing paused.
  CHECK(store->record_outcomes(std::vector<Outcome>{block(0)}, 3000).empty());
  FeedbackPolicy p;
  p.min_sample = 3;
  p.pause_block_ppm = 500'000;  // 50%
  store->set_feedback_policy(p);
  auto none = store->record_outcomes(std::vector<Outcome>{{c[1].id, MessageState::sent, 250,
                                                           "250 Ok", 0, "", BounceClass::unknown}},
                                     3000);
  CHECK(none.empty());  // 1 block of 2 answered: under the sample
  auto paused = store->record_outcomes(std::vector<Outcome>{block(2)}, 3000);  // 2 of 3
  REQUIRE(paused.size() == 1);
  CHECK(paused[0].campaign == "nov");
  CHECK(paused[0].reason.find("block rate 66.66% (2 of 3 answered)") == 0);
  CHECK(store->campaign("nov")->paused_at);
}

TEST_CASE_TEMPLATE(
    "a rate found under the sample pauses the campaign once enough messages are answered", B,
    BULKMAIL_STORE_BACKENDS) {
  FeedbackPolicy p;
  p.min_sample = 10;
  p.pause_complaint_ppm = 100'000;  // 10%
  SentQueueOn<B> q(5);
  NewMessage waiting{"nov", "customer-update", "waiting@example.com", "{}"};
  q.store->enqueue({&waiting, 1}, "test", 15'000);
  for (int i = 0; i < 2; ++i) {
    auto r = record_one(*q.store, report({of_kind(q.ids[i], FeedbackKind::complaint, "abuse")}),
                        20'000, p);
    CHECK(r.applied.at(0).paused_campaign.empty());  // 2 of 5: under the sample
  }
  q.store->set_feedback_policy(p);
  CHECK(q.store->pause_tripped_campaigns(21'000).empty());  // still under it
  q.add(10, 22'000, "nov", "more");                         // 2 of 15 answered: 13.33%
  auto paused = q.store->pause_tripped_campaigns(23'000);
  REQUIRE(paused.size() == 1);
  CHECK(paused[0].campaign == "nov");
  CHECK(describe_pause(paused[0]) ==
        "campaign nov paused itself: complaint rate 13.33% (2 of 15 answered) reached "
        "bounces.pause_complaint_rate 10%; `bulkmailctl resume --campaign nov` sends it on");
  CHECK(q.store->campaign("nov")->paused_at);
  CHECK(q.store->pause_tripped_campaigns(24'000).empty());  // paused already
  q.store->set_feedback_policy(std::nullopt);
  CHECK(q.store->set_campaign_paused("nov", false, 25'000));
  CHECK(q.store->pause_tripped_campaigns(26'000).empty());  // no policy: pauses none
}

TEST_CASE_TEMPLATE("the digests of reports taken in go with the events retention deletes", B,
                   BULKMAIL_STORE_BACKENDS) {
  SentQueueOn<B> q(1);
  ReceivedReport old = report({}, {"report:auto-reply"});
  record_one(*q.store, old, 20'000);
  ReceivedReport recent = report({}, {"report:auto-reply"});
  record_one(*q.store, recent, 90'000);
  q.store->prune(std::nullopt, 50'000, 100);
  // The old one is forgotten (it would count again); the recent one is still known.
  CHECK_FALSE(record_one(*q.store, old, 100'000).duplicate);
  CHECK(record_one(*q.store, recent, 100'000).duplicate);
}
