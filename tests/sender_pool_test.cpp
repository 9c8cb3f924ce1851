#include "delivery/sender_pool.h"

#include <doctest/doctest.h>

#include <SQLiteCpp/Database.h>
#include <boost/asio/post.hpp>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "delivery/dispatcher.h"
#include "simulated_clock.h"
#include "store/sqlite/sqlite_store.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;
using namespace std::chrono_literals;

namespace {

// A relay that accepts everything, optionally holding a delivery until the test lets it go.
class FakeRelay {
 public:
  class Connection final : public Transport {
   public:
    explicit Connection(FakeRelay& relay) : relay_(relay) {}
    AttemptResult deliver(const Envelope& envelope, std::string_view) override {
      return relay_.deliver(envelope.rcpt_to);
    }
    void drop_connection() override {}
    void interrupt() override {}

   private:
    FakeRelay& relay_;
  };

  AttemptResult deliver(const std::string& to) {
    std::unique_lock lock(mu_);
    started_.push_back(to);
    begun_.emplace_back(to, ++ticks_);
    changed_.notify_all();
    changed_.wait(lock, [&] { return to != hold_ || !holding_; });
    AttemptResult a;
    a.curl_code = 0;
    a.response_code = 250;
    a.last_reply = "250 2.0.0 Ok";
    return a;
  }
  // Deliveries to `to` wait in deliver() until release().
  void hold(const std::string& to) {
    std::lock_guard lock(mu_);
    hold_ = to;
    holding_ = true;
  }
  void release() {
    std::lock_guard lock(mu_);
    holding_ = false;
    changed_.notify_all();
  }
  // A point in the relay's order of events: a delivery begun after it has a larger tick.
  std::uint64_t tick() { return ++ticks_; }
  // Each delivery begun, with its tick.
  std::vector<std::pair<std::string, std::uint64_t>> begun() {
    std::lock_guard lock(mu_);
    return begun_;
  }
  bool wait_started(const std::string& to, std::chrono::milliseconds bound) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, bound, [&] {
      return std::find(started_.begin(), started_.end(), to) != started_.end();
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> started_;
  std::vector<std::pair<std::string, std::uint64_t>> begun_;
  std::atomic<std::uint64_t> ticks_{0};
  std::string hold_;
  bool holding_ = false;
};

// The daemon's sending side on a real queue file: store worker, suppression watch, dispatcher
// and sender threads, with a fake relay in place of libcurl. The dispatcher's throttle runs on
// simulated time, 50 times faster than real.
struct Pipeline {
  SimulatedClock clock;
  TempDir dir;
  std::shared_ptr<const Config> config;
  std::string db;
  FakeRelay relay;
  boost::asio::io_context io;
  std::unique_ptr<SuppressionWatch> watch;
  std::unique_ptr<StoreWorker> worker;
  std::unique_ptr<Dispatcher> dispatcher;
  std::unique_ptr<SenderPool> senders;
  std::unique_ptr<ClockDriver> time;
  std::thread loop;

  // `held`: deliveries to this address wait in the relay from the start (FakeRelay::hold).
  Pipeline(const std::vector<std::string>& recipients, const std::string& throttle, int connections,
           const std::string& held = "") {
    if (!held.empty()) relay.hold(held);
    std::string yaml = valid_config_yaml();
    auto replace = [&](const std::string& from, const std::string& to) {
      auto at = yaml.find(from);
      REQUIRE(at != std::string::npos);
      yaml.replace(at, from.size(), to);
    };
    replace("throttle:\n  messages_per_second: 100\n", throttle);
    replace("max_connections: 4", "max_connections: " + std::to_string(connections));
    auto load = load_config(write_config(dir, yaml));
    REQUIRE_MESSAGE(load.ok(), (load.ok() ? "" : load.errors[0].str()));
    config = load.config;
    db = config->database.sqlite.string();
    {
      SqliteStore s(db);
      std::vector<NewMessage> batch;
      for (const auto& r : recipients)
        batch.push_back(
            {"", "customer-update", r, R"({"first_name":"Ann","headline":"News","body":"Hi"})"});
      s.enqueue(batch, "test", now_millis() - 1000);
    }
    watch = std::make_unique<SuppressionWatch>();
    // One place per sender; the dispatcher's releases need none.
    worker = std::make_unique<StoreWorker>(std::make_unique<SqliteStore>(db), connections, nullptr,
                                           watch.get());
    dispatcher = std::make_unique<Dispatcher>(io, config, *worker, "test", watch.get(), clock);
    auto prepared = SenderPool::prepare(config);
    REQUIRE(prepared.ok());
    senders = std::make_unique<SenderPool>(
        std::move(prepared).value(), *worker, *watch, *dispatcher,
        [this](const Config&, const std::atomic<bool>&) -> std::unique_ptr<Transport> {
          return std::make_unique<FakeRelay::Connection>(relay);
        },
        [this] { return std::make_unique<SqliteStore>(db); });
    dispatcher->start();
    senders->start();
    time = std::make_unique<ClockDriver>(clock);
    loop = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  ~Pipeline() {
    time.reset();
    relay.release();  // a test that failed while the relay held a delivery ends, not hangs
    senders->stop();
    io.stop();
    loop.join();
    worker->stop();
  }

  // Waits (within `bound`) until no message is queued or sending.
  bool wait_done(std::chrono::milliseconds bound) {
    auto until = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < until) {
      auto c = SqliteStore(db).counts(std::nullopt);
      if (c[MessageState::queued] == 0 && c[MessageState::sending] == 0) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Records a one-click opt-out as the webhook does; true once it was answered "done".
  bool opt_out(const std::string& address, const std::string& category) {
    std::promise<bool> answered;
    worker->opt_out({address, category, SuppressionReason::unsubscribe, "one-click", 0},
                    [&](bool ok) { answered.set_value(ok); });
    return answered.get_future().get();
  }
};

}  // namespace

TEST_CASE("an opt-out stops a message claimed before it, however long the message waits") {
  // One message a second to the domain: the fifth waits about four (simulated) seconds in the
  // buffer, while suppressions made meanwhile come and go from the watch.
  std::vector<std::string> to;
  for (int i = 1; i <= 5; ++i) to.push_back("p" + std::to_string(i) + "@example.com");
  Pipeline p(to,
             "throttle:\n  messages_per_second: 100\n  domains:\n    example.com:\n"
             "      messages_per_second: 1\n",
             2);
  REQUIRE(p.relay.wait_started("p1@example.com", 5s));  // claimed: all five are buffered
  REQUIRE(p.opt_out("p5@example.com", "customer-update"));
  // Other people opt out meanwhile, as they do while a campaign goes out.
  Micros at = p.clock.now_micros();
  while (p.clock.now_micros() < at + 1'500'000) std::this_thread::sleep_for(1ms);
  REQUIRE(p.opt_out("someone@example.org", ""));
  REQUIRE(p.wait_done(15s));
  SqliteStore s(p.db);
  auto h = s.history("p5@example.com");
  REQUIRE_FALSE(h.empty());
  CHECK(h.back().type == "suppressed");
  for (const auto& e : h) CHECK(e.type != "sent");
  CHECK(s.counts(std::nullopt)[MessageState::sent] == 4);
}

TEST_CASE("an opt-out answered while its recipient's delivery is under way comes after it") {
  Pipeline p({"held@example.com"}, "throttle:\n  messages_per_second: 100\n", 1,
             "held@example.com");
  REQUIRE(p.relay.wait_started("held@example.com", 5s));
  // The recipient opts out while the relay is receiving their message; the relay finishes a
  // moment later, well within the second an opt-out may wait for it.
  std::thread finish([&] {
    std::this_thread::sleep_for(200ms);
    p.relay.release();
  });
  bool ok = p.opt_out("held@example.com", "customer-update");
  finish.join();
  REQUIRE(ok);
  REQUIRE(p.wait_done(5s));
  // The evidence reads in order: the message went out, then the opt-out took effect.
  auto h = SqliteStore(p.db).history("held@example.com");
  std::int64_t sent = 0, suppressed = 0;
  for (const auto& e : h) {
    if (e.type == "sent") sent = e.id;
    if (e.type == "suppression-added") suppressed = e.id;
  }
  CHECK(sent != 0);
  CHECK(suppressed != 0);
  CHECK(sent < suppressed);
}

TEST_CASE(
    "at the end of the grace period a sender waiting for a commit that never comes gives up") {
  // A full disk: the relay took the first message, but its outcome cannot be recorded, so the
  // sender waits before it delivers the next. A shutdown's abort must end that wait.
  Pipeline p({"first@example.com", "second@example.com"}, "throttle:\n  messages_per_second: 100\n",
             1, "first@example.com");
  REQUIRE(p.relay.wait_started("first@example.com", 5s));
  // Both claimed: the first at the relay, the second in the buffer.
  auto claimed = [&] {
    auto st = p.dispatcher->stats();
    return st.in_flight + st.buffered;
  };
  for (int i = 0; i < 500 && claimed() < 2; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(claimed() == 2);
  {
    // From now on every commit fails, as when the disk is full.
    SQLite::Database db(p.db, SQLite::OPEN_READWRITE, 10'000);  // the worker may be writing
    db.exec("ALTER TABLE messages RENAME TO messages_gone");
  }
  p.relay.release();
  auto in_flight = [&] { return p.dispatcher->stats().in_flight; };
  // The sender has taken the second message from the buffer, and holds it: the first's outcome
  // is not committed.
  for (int i = 0; i < 300 && p.dispatcher->stats().buffered > 0; ++i)
    std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(200ms);
  REQUIRE(p.dispatcher->stats().buffered == 0);
  REQUIRE(in_flight() == 1);
  p.senders->abort_in_flight();
  for (int i = 0; i < 200 && in_flight() > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(in_flight() == 0);
  CHECK_FALSE(p.relay.wait_started("second@example.com", 100ms));  // never delivered
}

TEST_CASE("senders drain a queue while opt-outs arrive and the config is reloaded") {
  // Every thread of the sending side busy at once (also run under ThreadSanitizer): four senders,
  // the dispatcher's loop, the store worker, a thread opting people out and one reloading.
  const int kMessages = 2000;
  std::vector<std::string> to;
  for (int i = 0; i < kMessages; ++i)
    to.push_back("r" + std::to_string(i) + "@" + (i % 3 ? "example.com" : "example.org"));
  Pipeline p(to, "throttle:\n  messages_per_second: 100000\n", 4);
  std::map<std::string, std::uint64_t> opted_out;  // address: the relay's tick at the answer
  std::thread opting([&] {
    for (int i = kMessages - 1; i >= 0; i -= 10) {
      if (p.opt_out(to[i], "customer-update")) opted_out[to[i]] = p.relay.tick();
    }
  });
  std::thread reloading([&] {
    for (int r = 0; r < 3; ++r) {
      std::this_thread::sleep_for(30ms);
      auto prepared = SenderPool::prepare(p.config);
      CHECK(prepared.ok());
      if (!prepared.ok()) return;
      p.senders->reload(std::move(prepared).value());
      boost::asio::post(p.io, [&p] { p.dispatcher->reload(p.config); });
    }
  });
  opting.join();
  reloading.join();
  REQUIRE(p.wait_done(60s));
  SqliteStore s(p.db);
  auto counts = s.counts(std::nullopt);
  CHECK(counts[MessageState::sent] + counts[MessageState::suppressed] == kMessages);
  // The opt-outs began with the queue's last messages, so most came before them.
  MESSAGE(counts[MessageState::suppressed] << " of " << kMessages / 10 << " opted out in time");
  CHECK(counts[MessageState::suppressed] > 0);
  CHECK(opted_out.size() == static_cast<std::size_t>(kMessages / 10));
  // Nobody's delivery began after their opt-out was answered, and nobody was sent twice.
  std::map<std::string, int> deliveries;
  for (const auto& [address, tick] : p.relay.begun()) {
    CAPTURE(address);
    ++deliveries[address];
    auto opted = opted_out.find(address);
    if (opted != opted_out.end()) CHECK(tick < opted->second);
  }
  for (const auto& [address, n] : deliveries) {
    CAPTURE(address);
    CHECK(n == 1);
  }
  CHECK(deliveries.size() == static_cast<std::size_t>(counts[MessageState::sent]));
}
