#include "delivery/dispatcher.h"

#include <doctest/doctest.h>

#include <boost/asio/post.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "captured_stderr.h"
#include "simulated_clock.h"
#include "store/sqlite/sqlite_store.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;
using namespace std::chrono_literals;

namespace {

// A dispatcher over a real queue file and store worker, its timers on an event loop of its own,
// on simulated time. Senders are the test's threads calling next().
struct Rig {
  SimulatedClock clock;
  TempDir dir;
  std::shared_ptr<const Config> config;
  std::string db;
  std::unique_ptr<StoreWorker> worker;
  boost::asio::io_context io;
  std::unique_ptr<Dispatcher> dispatcher;
  std::thread loop;

  Rig(const std::vector<std::string>& recipients, const std::string& throttle = "",
      int senders = 2) {
    std::string yaml = valid_config_yaml();
    if (!throttle.empty()) {
      auto at = yaml.find("throttle:\n  messages_per_second: 100\n");
      REQUIRE(at != std::string::npos);
      yaml.replace(at, std::string("throttle:\n  messages_per_second: 100\n").size(), throttle);
    }
    auto load = load_config(write_config(dir, yaml));
    REQUIRE_MESSAGE(load.ok(), (load.ok() ? "" : load.errors[0].str()));
    config = load.config;
    db = config->database.sqlite.string();
    {
      SqliteStore s(db);
      std::vector<NewMessage> batch;
      for (const auto& r : recipients) batch.push_back({"", "customer-update", r, "{}"});
      s.enqueue(batch, "test", now_millis() - 1000);
    }
    worker = std::make_unique<StoreWorker>(std::make_unique<SqliteStore>(db), senders);
    dispatcher = std::make_unique<Dispatcher>(io, config, *worker, "test", nullptr, clock);
    dispatcher->start();
    loop = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  ~Rig() {
    dispatcher->close();
    io.stop();
    loop.join();
    worker->stop();
  }

  // What a sender hands back after the relay accepted `job`.
  static JobResult sent(int sender, const Job& job) {
    JobResult r;
    r.sender = sender;
    r.message = job.message;
    r.domain = job.domain;
    r.kind = JobResult::Kind::delivered;
    r.classification.verdict = Verdict::sent;
    r.classification.code = 250;
    r.recorded_state = MessageState::sent;
    return r;
  }
};

// Runs a sender that takes jobs until `want` were taken (then closes the dispatcher) or the
// dispatcher says stop; returns the jobs' domains in the order taken.
std::vector<std::string> drain(Rig& rig, std::size_t want, int senders = 1) {
  ClockDriver time(rig.clock, std::chrono::milliseconds(1), std::chrono::microseconds(50));
  std::mutex mu;
  std::vector<std::string> domains;
  std::vector<std::thread> threads;
  for (int i = 0; i < senders; ++i) {
    threads.emplace_back([&, i] {
      JobResult last;
      bool have = false;
      while (auto job = rig.dispatcher->next(i, have ? &last : nullptr)) {
        last = Rig::sent(i, *job);
        have = true;
        std::lock_guard lock(mu);
        domains.push_back(job->domain);
        if (domains.size() == want) rig.dispatcher->close();
      }
    });
  }
  // A bound, so that a lost wake-up fails the test instead of hanging it.
  std::thread watchdog([&] {
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard lock(mu);
        if (domains.size() >= want) return;
      }
      std::this_thread::sleep_for(100ms);
    }
    rig.dispatcher->close();
  });
  for (auto& t : threads) t.join();
  watchdog.join();
  return domains;
}

}  // namespace

TEST_CASE("each claimed message goes to a sender once, domains taken in turn") {
  Rig rig({"a1@a.example", "a2@a.example", "a3@a.example", "b1@b.example", "b2@b.example",
           "c1@c.example"});
  auto domains = drain(rig, 6);
  REQUIRE(domains.size() == 6);
  CHECK(domains == std::vector<std::string>{"a.example", "b.example", "c.example", "a.example",
                                            "b.example", "a.example"});
  // The last result is taken note of by the call that says stop.
  CHECK(rig.dispatcher->stats().sent == 6);
  CHECK(rig.dispatcher->stats().in_flight == 0);
}

TEST_CASE("senders with nothing allowed sleep until the throttle allows the next send") {
  std::vector<std::string> to;
  for (int i = 0; i < 12; ++i) to.push_back("u" + std::to_string(i) + "@example.com");
  // 20 a second with a burst of 2: three at once (the bucket holds one plus the burst), then the
  // other nine at 20 a second, so the last of 12 cannot start before 450 ms.
  Rig rig(to, "throttle:\n  messages_per_second: 20\n  burst: 2\n", 3);
  Micros started = rig.clock.now_micros();
  auto domains = drain(rig, 12, 3);
  auto took = std::chrono::microseconds(rig.clock.now_micros() - started);
  CHECK(domains.size() == 12);  // no sender slept through its turn
  CHECK(took >= 450ms);         // the ninth after the first three, at 20 a second
  CHECK(took < 1500ms);         // and none overslept by much
}

TEST_CASE("shutdown hands the buffer back and ends once the message in flight is accounted for") {
  Rig rig({"a@example.com", "b@example.com", "c@example.com", "d@example.com"});
  auto job = rig.dispatcher->next(0, nullptr);
  REQUIRE(job);
  std::promise<void> drained;
  auto drained_future = drained.get_future();
  bool aborted = false;
  boost::asio::post(rig.io, [&] {
    rig.dispatcher->shutdown([&] { drained.set_value(); }, [&] { aborted = true; });
  });
  // The buffered three are released at once; the one in flight keeps shutdown from finishing.
  CHECK(drained_future.wait_for(100ms) == std::future_status::timeout);
  JobResult r = Rig::sent(0, *job);
  CHECK_FALSE(rig.dispatcher->next(0, &r));  // accounted for; no more work
  CHECK(drained_future.wait_for(5s) == std::future_status::ready);
  CHECK_FALSE(aborted);
  // The three buffered ones; a claim already asked for before the shutdown may take them again
  // once they are back in the queue, and hands them back once more.
  CHECK(rig.dispatcher->stats().released >= 3);
  CHECK(rig.dispatcher->stats().in_flight == 0);
  rig.worker->stop();  // commits the releases
  CHECK(SqliteStore(rig.db).counts(std::nullopt)[MessageState::queued] == 3);
}

namespace {

// What a sender hands back when the relay refused the connection (relay trouble: the breaker
// counts it) or when the message could not be composed (nothing reached the relay).
JobResult relay_refused(int sender, const Job& job) {
  JobResult r = Rig::sent(sender, job);
  r.classification.verdict = Verdict::deferred;
  r.classification.code = 421;
  r.classification.reply = "421 try later";
  r.classification.relay_trouble = true;
  r.recorded_state = MessageState::queued;
  return r;
}

JobResult compose_failed(int sender, const Job& job) {
  JobResult r = Rig::sent(sender, job);
  r.kind = JobResult::Kind::compose_failed;
  r.detail = "template needs 'name'";
  r.recorded_state = MessageState::failed;
  return r;
}

// Asks for the next job on another thread while simulated time runs; gives up (closing the
// dispatcher) after `bound` of real time.
std::optional<Job> next_within(Rig& rig, int sender, const JobResult& finished,
                               std::chrono::milliseconds bound) {
  ClockDriver time(rig.clock);
  auto job =
      std::async(std::launch::async, [&] { return rig.dispatcher->next(sender, &finished); });
  if (job.wait_for(bound) == std::future_status::timeout) rig.dispatcher->close();
  return job.get();
}

}  // namespace

TEST_CASE("a half-open probe that ends without a delivery lets dispatch go on") {
  std::vector<std::string> to;
  for (int i = 0; i < 8; ++i) to.push_back("u" + std::to_string(i) + "@example.com");
  Rig rig(to, "", 1);
  auto job = rig.dispatcher->next(0, nullptr);
  REQUIRE(job);
  // Three refusals open the breaker; the next job is the half-open probe, about a second later.
  for (int i = 0; i < 3; ++i) {
    job = next_within(rig, 0, relay_refused(0, *job), 5s);
    REQUIRE(job);
  }
  CHECK(rig.dispatcher->stats().paused);
  SUBCASE("the probe could not be composed") {
    job = next_within(rig, 0, compose_failed(0, *job), 5s);
  }
  SUBCASE("the probe's recipient was suppressed at the last look") {
    JobResult r = Rig::sent(0, *job);
    r.kind = JobResult::Kind::suppressed;
    r.recorded_state = MessageState::suppressed;
    job = next_within(rig, 0, r, 5s);
  }
  SUBCASE("the probe was aborted") {
    JobResult r = Rig::sent(0, *job);
    r.kind = JobResult::Kind::aborted;
    r.recorded_state = MessageState::queued;
    job = next_within(rig, 0, r, 5s);
  }
  // The next probe goes out; once it is delivered, dispatch runs again.
  REQUIRE(job);
  job = next_within(rig, 0, Rig::sent(0, *job), 5s);
  REQUIRE(job);
  CHECK_FALSE(rig.dispatcher->stats().paused);
}

TEST_CASE("the daily limit: held in the open, handed back as such, and lifted by a raised limit") {
  Rig rig({"a@example.com", "b@example.com", "c@example.com", "d@example.com"},
          "throttle:\n  messages_per_second: 100\n  daily_limit: 2\n", 1);
  auto job = rig.dispatcher->next(0, nullptr);
  REQUIRE(job);
  // A delivery the relay refused does not count toward the limit.
  JobResult refused = Rig::sent(0, *job);
  refused.classification.verdict = Verdict::deferred;
  refused.classification.code = 450;
  refused.recorded_state = MessageState::deferred;
  job = next_within(rig, 0, refused, 5s);
  REQUIRE(job);
  job = next_within(rig, 0, Rig::sent(0, *job), 5s);
  REQUIRE(job);
  // The second accepted message reaches the limit: no third job, and everyone can see why.
  std::promise<std::optional<Job>> third;
  auto third_future = third.get_future();
  JobResult last = Rig::sent(0, *job);
  std::thread sender([&] { third.set_value(rig.dispatcher->next(0, &last)); });
  {
    // More than an hour of simulated back-offs and retries passes, the limit still holding.
    ClockDriver time(rig.clock, std::chrono::seconds(5), std::chrono::microseconds(200));
    CHECK(third_future.wait_for(200ms) == std::future_status::timeout);
  }
  auto stats = rig.dispatcher->stats();
  CHECK(stats.paused);
  CHECK(stats.pause_reason == "daily limit reached: 2 of 2 sent today, resumes at 00:00 UTC");
  CHECK(stats.sent_today == 2);
  CHECK(stats.daily_limit == 2);
  // What was buffered went back to the queue, due, saying why.
  auto handed_back = [&] {
    auto h = SqliteStore(rig.db).history("d@example.com");
    return !h.empty() && h.back().detail.find("daily limit reached") != std::string::npos;
  };
  for (int i = 0; i < 50 && !handed_back(); ++i) std::this_thread::sleep_for(100ms);
  CHECK(handed_back());
  auto state = SqliteStore(rig.db).dispatch_state();
  REQUIRE(state);
  CHECK(state->state == "paused");
  CHECK(state->detail.find("daily limit reached") != std::string::npos);
  // A raised limit (SIGHUP) sends the rest at once.
  std::string yaml = valid_config_yaml();
  yaml.replace(yaml.find("throttle:\n  messages_per_second: 100\n"),
               std::string("throttle:\n  messages_per_second: 100\n").size(),
               "throttle:\n  messages_per_second: 100\n  daily_limit: 10\n");
  auto raised = load_config(write_config(rig.dir, yaml));
  REQUIRE(raised.ok());
  boost::asio::post(rig.io, [&] { rig.dispatcher->reload(raised.config); });
  REQUIRE(third_future.wait_for(5s) == std::future_status::ready);
  sender.join();
  CHECK(third_future.get());
  CHECK_FALSE(rig.dispatcher->stats().paused);
}

namespace {

// The simulated time a sender waits for the next message to a domain after a 4xx for the one
// before; `recipient_only` as classify_attempt says for a 4xx to RCPT TO.
Micros wait_after_4xx(bool recipient_only) {
  Rig rig({"a1@a.example", "a2@a.example", "a3@a.example"}, "", 1);
  auto job = rig.dispatcher->next(0, nullptr);
  REQUIRE(job);
  JobResult r = Rig::sent(0, *job);
  r.classification.verdict = Verdict::deferred;
  r.classification.code = 451;
  r.classification.reply = "451 4.7.1 try again later";
  r.classification.recipient_only = recipient_only;
  r.recorded_state = MessageState::deferred;
  Micros before = rig.clock.now_micros();
  {
    // Simulated time at 5x real time: the store's real work in between stays a few simulated ms.
    ClockDriver time(rig.clock, 1ms, 200us);
    auto next = std::async(std::launch::async, [&] { return rig.dispatcher->next(0, &r); });
    if (next.wait_for(5s) == std::future_status::timeout) rig.dispatcher->close();
    job = next.get();
  }
  REQUIRE(job);
  Micros waited = rig.clock.now_micros() - before;
  rig.dispatcher->close();
  JobResult done = Rig::sent(0, *job);
  CHECK_FALSE(rig.dispatcher->next(0, &done));  // accounted for; the rig ends at once
  return waited;
}

}  // namespace

namespace {

std::vector<std::string> eight_recipients() {
  std::vector<std::string> to;
  for (int i = 0; i < 8; ++i) to.push_back("u" + std::to_string(i) + "@example.com");
  return to;
}

// The first job of each of senders 0 to `senders` - 1.
std::vector<Job> first_jobs(Rig& rig, int senders) {
  std::vector<Job> jobs;
  for (int i = 0; i < senders; ++i) {
    auto job = rig.dispatcher->next(i, nullptr);
    REQUIRE(job);
    jobs.push_back(*job);
  }
  return jobs;
}

}  // namespace

TEST_CASE("a 4xx about one recipient defers it only, a 4xx about the session pauses the domain") {
  // Greylisting one recipient: the next message to the domain goes at the rate's pace (100/s).
  CHECK(wait_after_4xx(true) < 500'000);
  // 451 to MAIL FROM or DATA: the domain pauses for a second.
  CHECK(wait_after_4xx(false) >= 1'000'000);
}

TEST_CASE("a pause holds while deliveries begun before it end well, and is logged once") {
  // A relay that refuses new connections but takes mail on those it has: three senders that had
  // to reconnect are refused, a fourth on an old connection delivers. Dispatch stays paused (the
  // probe, after the delay, decides) instead of resuming and pausing again on every result.
  Rig rig(eight_recipients(), "", 4);
  std::vector<Job> jobs = first_jobs(rig, 4);
  auto paused_within = [&](std::chrono::milliseconds bound) {
    for (auto waited = 0ms; waited < bound; waited += 10ms) {
      if (rig.dispatcher->stats().paused) return true;
      std::this_thread::sleep_for(10ms);
    }
    return rig.dispatcher->stats().paused;
  };
  std::vector<std::future<std::optional<Job>>> asks;
  std::string said = captured_stderr([&] {
    for (int i = 0; i < 3; ++i) {
      JobResult r = relay_refused(i, jobs[i]);
      asks.push_back(
          std::async(std::launch::async, [&rig, i, r] { return rig.dispatcher->next(i, &r); }));
    }
    REQUIRE(paused_within(5s));
    JobResult ok = Rig::sent(3, jobs[3]);
    asks.push_back(
        std::async(std::launch::async, [&rig, ok] { return rig.dispatcher->next(3, &ok); }));
    for (auto waited = 0ms; rig.dispatcher->stats().sent == 0 && waited < 5s; waited += 10ms)
      std::this_thread::sleep_for(10ms);
  });
  CHECK(rig.dispatcher->stats().sent == 1);
  CHECK(rig.dispatcher->stats().paused);
  auto lines_with = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = said.find(what); at != std::string::npos; at = said.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(lines_with("dispatch paused") == 1);
  CHECK(lines_with("dispatch resumed") == 0);
  rig.dispatcher->close();
  for (auto& a : asks) a.get();
}

TEST_CASE("the relay's pause shows when a pause for the database ends while the breaker is open") {
  Rig rig(eight_recipients(), "", 4);
  std::vector<Job> jobs = first_jobs(rig, 3);
  rig.dispatcher->database_health("disk I/O error", 0ms);
  REQUIRE(rig.dispatcher->stats().paused);
  std::vector<std::future<std::optional<Job>>> asks;
  for (int i = 0; i < 3; ++i) {
    JobResult r = relay_refused(i, jobs[i]);
    asks.push_back(
        std::async(std::launch::async, [&rig, i, r] { return rig.dispatcher->next(i, &r); }));
  }
  for (auto waited = 0ms; rig.dispatcher->stats().in_flight > 0 && waited < 5s; waited += 10ms)
    std::this_thread::sleep_for(10ms);
  // While the database is away its reason stays; once it is back, the relay's shows.
  CHECK(rig.dispatcher->stats().pause_reason.find("database") != std::string::npos);
  rig.dispatcher->database_health("", 1500ms);
  CHECK(rig.dispatcher->stats().paused);
  CHECK(rig.dispatcher->stats().pause_reason.find(
            "the relay is not accepting mail (421 try later)") != std::string::npos);
  rig.dispatcher->close();
  for (auto& a : asks) a.get();
}
