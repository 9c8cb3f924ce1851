#include "delivery/sender.h"

#include <doctest/doctest.h>

#include <deque>

#include "config/config.h"
#include "crypto/verp_token.h"
#include "store/sqlite/sqlite_store.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// A relay connection that answers from a script, one reply per delivery (250 once it runs out),
// and remembers what it was asked.
struct ScriptedRelay {
  std::deque<AttemptResult> replies;
  std::vector<Envelope> envelopes;
  int connections = 0;  // transports made
  int drops = 0;
  std::atomic<bool>* abort_during_delivery = nullptr;  // set while a delivery is under way

  class Connection final : public Transport {
   public:
    explicit Connection(ScriptedRelay& r) : r_(r) {}
    AttemptResult deliver(const Envelope& envelope, std::string_view) override {
      r_.envelopes.push_back(envelope);
      if (r_.abort_during_delivery) *r_.abort_during_delivery = true;
      if (r_.replies.empty()) return reply(250, "250 2.0.0 Ok");
      AttemptResult a = r_.replies.front();
      r_.replies.pop_front();
      return a;
    }
    void drop_connection() override { ++r_.drops; }
    void interrupt() override {}

   private:
    ScriptedRelay& r_;
  };

  static AttemptResult reply(long code, const std::string& line) {
    AttemptResult a;
    a.curl_code = code < 400 ? 0 : 55;  // CURLE_SEND_ERROR, as libcurl reports a refused RCPT
    a.response_code = code;
    if (code >= 400) a.error_text = "RCPT failed: " + std::to_string(code);
    a.last_reply = line;
    return a;
  }
};

// One sender on a real queue file, its jobs claimed from the store as the dispatcher would.
struct OneSender {
  TempDir dir;
  std::shared_ptr<const Config> config;
  std::string db;
  ScriptedRelay relay;
  SuppressionWatch watch;
  std::unique_ptr<StoreWorker> worker;
  std::atomic<bool> abort{false};
  int stores_opened = 0;
  std::unique_ptr<SenderServices> services;
  std::unique_ptr<Sender> sender;

  explicit OneSender(
      const std::string& vars = R"({"first_name":"Ann","headline":"News","body":"Hi"})") {
    config = load(valid_config_yaml());
    db = config->database.sqlite.string();
    {
      SqliteStore s(db);
      std::vector<NewMessage> batch;
      for (const char* to : {"a@example.com", "b@example.com", "c@example.com"})
        batch.push_back({"spring", "customer-update", to, vars});
      s.enqueue(batch, "test", now_millis() - 1000);
    }
    watch.set_horizon(SuppressionWatch::Clock::now() - std::chrono::hours(1));  // a claim is out
    worker = std::make_unique<StoreWorker>(std::make_unique<SqliteStore>(db), 1, nullptr, &watch);
    services = std::make_unique<SenderServices>(SenderServices{
        *worker, watch,
        [this](const Config&, const std::atomic<bool>&) -> std::unique_ptr<Transport> {
          ++relay.connections;
          return std::make_unique<ScriptedRelay::Connection>(relay);
        },
        [this] {
          ++stores_opened;
          return std::make_unique<SqliteStore>(db);
        },
        nullptr, abort});
    sender = std::make_unique<Sender>(0, *services, config, composer(config));
  }
  ~OneSender() { worker->stop(); }

  static std::unique_ptr<Composer> composer(const std::shared_ptr<const Config>& c) {
    auto made = Composer::create(c);
    REQUIRE(made.ok());
    return std::move(made).value();
  }

  std::shared_ptr<const Config> load(const std::string& yaml) {
    auto l = load_config(write_config(dir, yaml));
    REQUIRE_MESSAGE(l.ok(), (l.ok() ? "" : l.errors[0].str()));
    return l.config;
  }

  Job claim() {
    auto m = SqliteStore(db).claim_due("test", 1, now_millis(), now_millis() + 60'000);
    REQUIRE(m.size() == 1);
    return {m[0], "example.com", 0};
  }
  // Handles the next message and waits until its outcome is committed.
  JobResult next() {
    JobResult r = sender->handle(claim());
    worker->wait_committed(0, r.seq);
    return r;
  }
  std::string last_event(const std::string& address) {
    auto h = SqliteStore(db).history(address);
    REQUIRE_FALSE(h.empty());
    return h.back().type;
  }
};

}  // namespace

TEST_CASE("a sender records each kind of reply as its outcome") {
  struct Row {
    long code;
    const char* line;
    MessageState state;
    bool suppressed_after;
    const char* event;
  };
  for (Row row :
       {Row{250, "250 2.0.0 Ok", MessageState::sent, false, "sent"},
        Row{550, "550 5.1.1 No such user", MessageState::failed, true, "suppression-added"},
        Row{450, "450 4.2.0 Mailbox busy", MessageState::deferred, false, "deferred"}}) {
    CAPTURE(row.line);
    OneSender s;
    s.relay.replies.push_back(ScriptedRelay::reply(row.code, row.line));
    JobResult r = s.next();
    CHECK(r.kind == JobResult::Kind::delivered);
    CHECK(r.recorded_state == row.state);
    CHECK(s.relay.envelopes.at(0).rcpt_to == "a@example.com");
    CHECK(s.relay.envelopes.at(0).mail_from == s.config->sender.return_path.str());
    CHECK(SqliteStore(s.db).counts("spring")[row.state] == 1);
    CHECK(SqliteStore(s.db).find_suppression("a@example.com", "").has_value() ==
          row.suppressed_after);
    CHECK(s.last_event("a@example.com") == row.event);
  }
}

TEST_CASE("a sender drops its connection after a 421 and hands the message back") {
  OneSender s;
  s.relay.replies.push_back(ScriptedRelay::reply(421, "421 4.7.0 Try again later"));
  JobResult r = s.next();
  CHECK(r.classification.drop_connection);
  CHECK(s.relay.drops == 1);
  CHECK(r.recorded_state == MessageState::deferred);
}

TEST_CASE("a relay that cannot be reached spends no attempt") {
  OneSender s;
  AttemptResult refused;
  refused.curl_code = 7;  // CURLE_COULDNT_CONNECT
  refused.reached_transfer = false;
  s.relay.replies.push_back(refused);
  JobResult r = s.next();
  CHECK(r.recorded_state == MessageState::queued);
  auto again = SqliteStore(s.db).claim_due("test", 10, now_millis() + Sender::kRelayRetryMs,
                                           now_millis() + 60'000);
  REQUIRE(again.size() == 3);
  for (const auto& m : again) CHECK(m.attempts == 1);  // its first attempt, still
}

TEST_CASE("a recipient suppressed since the claim is not delivered to") {
  OneSender s;
  Job job = s.claim();
  s.watch.add({"a@example.com", "", SuppressionReason::unsubscribe, "one-click", now_millis()});
  JobResult r = s.sender->handle(std::move(job));
  s.worker->wait_committed(0, r.seq);
  CHECK(r.kind == JobResult::Kind::suppressed);
  CHECK(r.detail.find("recipient suppressed") == 0);
  CHECK(s.relay.envelopes.empty());
  CHECK(r.recorded_state == MessageState::suppressed);
  CHECK(s.stores_opened == 0);  // the watch knew
}

TEST_CASE("when the watch cannot tell, the sender asks the store") {
  OneSender s;
  Job job = s.claim();
  // A watch of one entry, overflowed: it no longer knows who was suppressed since the claim.
  SuppressionWatch small(1);
  small.set_horizon(SuppressionWatch::Clock::now() - std::chrono::hours(1));
  SenderServices services{*s.worker, small,  s.services->transports, s.services->open_store,
                          nullptr,   s.abort};
  Sender sender(0, services, s.config, OneSender::composer(s.config));
  small.add({"x@example.com", "", SuppressionReason::manual, "test", now_millis()});
  small.add({"y@example.com", "", SuppressionReason::manual, "test", now_millis()});
  SqliteStore(s.db).suppress(
      std::vector<Suppression>{{"a@example.com", "", SuppressionReason::manual, "test", 0}},
      now_millis());
  JobResult r = sender.handle(std::move(job));
  s.worker->wait_committed(0, r.seq);
  CHECK(s.stores_opened == 1);
  CHECK(r.kind == JobResult::Kind::suppressed);
  CHECK(s.relay.envelopes.empty());
}

TEST_CASE("a message that does not compose fails without reaching the relay") {
  OneSender s(R"({"first_name":"Ann","body":"Hi"})");  // the template needs a headline
  JobResult r = s.next();
  CHECK(r.kind == JobResult::Kind::compose_failed);
  CHECK(r.detail.find("headline") != std::string::npos);
  CHECK(r.recorded_state == MessageState::failed);
  CHECK(s.relay.envelopes.empty());
}

TEST_CASE("once the grace period ends, a message is handed back, not delivered") {
  OneSender s;
  s.abort = true;
  JobResult r = s.next();
  CHECK(r.kind == JobResult::Kind::aborted);
  CHECK(r.detail == "shutting down");
  CHECK(s.relay.envelopes.empty());
  CHECK(r.recorded_state == MessageState::queued);
}

TEST_CASE("a delivery cut off at the end of the grace period is handed back, its attempt unspent") {
  OneSender s;
  s.relay.abort_during_delivery = &s.abort;  // the grace period ends while the relay has it
  AttemptResult cut;
  cut.curl_code = 42;  // CURLE_ABORTED_BY_CALLBACK
  s.relay.replies.push_back(cut);
  JobResult r = s.next();
  CHECK(r.kind == JobResult::Kind::aborted);
  CHECK(r.detail.find("shutting down (") == 0);
  CHECK(r.recorded_state == MessageState::queued);
  CHECK(s.last_event("a@example.com") != "deferred");
}

TEST_CASE("a reload between two messages takes effect for the second") {
  OneSender s;
  CHECK(s.next().recorded_state == MessageState::sent);
  std::string yaml = valid_config_yaml();
  yaml.replace(yaml.find("updates@mail.example.com"), 24, "news@mail.example.com");
  auto fresh = s.load(yaml);
  s.sender->reload(fresh, OneSender::composer(fresh));
  CHECK(s.next().recorded_state == MessageState::sent);
  REQUIRE(s.relay.envelopes.size() == 2);
  CHECK(s.relay.connections == 2);  // a new connection for the new config
  CHECK(s.relay.envelopes[0].mail_from != s.relay.envelopes[1].mail_from);
}

TEST_CASE("a reload lets go of the last config's composer and the copy made of it") {
  // The sender composes with a copy of the composer it is given; a reload frees both before the
  // next message, so that no config but the newest stays in memory.
  OneSender s;
  std::shared_ptr<const Composer> given = OneSender::composer(s.config);
  std::weak_ptr<const Composer> old = given;
  s.sender->reload(s.config, std::move(given));
  CHECK(s.next().recorded_state == MessageState::sent);
  CHECK_FALSE(old.expired());  // still the one copied from
  std::string yaml = valid_config_yaml();
  yaml.replace(yaml.find("updates@mail.example.com"), 24, "news@mail.example.com");
  auto fresh = s.load(yaml);
  std::weak_ptr<const Config> old_config = s.config;
  s.config.reset();
  s.sender->reload(fresh, OneSender::composer(fresh));
  CHECK(old.expired());
  CHECK(old_config.expired());  // the copy held it too
  CHECK(s.next().recorded_state == MessageState::sent);
  REQUIRE(s.relay.envelopes.size() == 2);
  CHECK(s.relay.envelopes[1].mail_from != s.relay.envelopes[0].mail_from);
}

TEST_CASE("with bounces.domain each message goes out from its own VERP return path") {
  OneSender s;
  auto verp = s.load(valid_config_yaml() + "bounces:\n  domain: bounces.mail.example.com\n");
  s.sender->reload(verp, OneSender::composer(verp));
  JobResult first = s.next();
  JobResult second = s.next();
  CHECK(first.recorded_state == MessageState::sent);
  REQUIRE(s.relay.envelopes.size() == 2);
  VerpCodec codec(verp->unsubscribe.keys);
  for (std::size_t i = 0; i < 2; ++i) {
    const JobResult& r = i == 0 ? first : second;
    const std::string& from = s.relay.envelopes[i].mail_from;
    CAPTURE(from);
    CHECK(from == verp_address(codec, r.message.id, "bounces.mail.example.com"));
    CHECK(codec.verify(from.substr(0, from.find('@'))) == r.message.id);
  }
  CHECK(s.relay.envelopes[0].mail_from != s.relay.envelopes[1].mail_from);
  CHECK(s.relay.envelopes[1].rcpt_to == "b@example.com");
}

TEST_CASE("a failure outside the message defers it, and the sender starts with a new connection") {
  OneSender s;
  CHECK(s.next().recorded_state == MessageState::sent);
  // The relay's address stopped resolving when the reload set up a connection.
  auto transports = s.services->transports;
  bool fail = true;
  s.services->transports = [&](const Config& c, const std::atomic<bool>& abort) {
    if (std::exchange(fail, false)) throw std::runtime_error("no connection could be made");
    return transports(c, abort);
  };
  s.sender->reload(s.config, OneSender::composer(s.config));
  JobResult r = s.next();
  CHECK(r.kind == JobResult::Kind::aborted);
  CHECK(r.detail == "no connection could be made");
  CHECK(r.recorded_state == MessageState::queued);
  CHECK(s.relay.envelopes.size() == 1);
  CHECK(s.next().recorded_state == MessageState::sent);  // the next job tries again, and sends
  CHECK(s.relay.connections == 2);
}
