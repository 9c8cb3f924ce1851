// The store benchmark (issue 16): the dispatcher's two store calls, claim_due then record_outcomes,
// in a loop with no SMTP, on SQLite or PostgreSQL. It fills an empty database with N queued
// messages, then W workers, each with a Store of its own (as several daemons each have one), claim
// batches of B and record every message `sent`, until a claim comes back empty. It times the drain
// alone, and where its time goes: each worker's time inside each call, this process's CPU and,
// given --server-pid, the CPU of the database server (that process and its children) meanwhile.
// Then it checks that every message was claimed exactly once and is `sent`, and exits 1 when not.
// bench/store runs it on both backends side by side and prints the table in BENCHMARKS.md.
//
// Usage: store_bench --database (FILE.db|postgresql://...) --messages N --workers W --batch B
//                    [--server-pid PID] [--json]
// The database must hold no message: a new SQLite file, or an empty PostgreSQL database.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "config/config.h"
#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"

using namespace bulkmail;

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kEnqueueBatch = 1000;          // messages per enqueue call while filling
constexpr UnixMillis kLeaseMillis = 10 * 60 * 1000;  // longer than any drain: no lease runs out
constexpr std::string_view kDomains[] = {"example.com", "example.net", "example.org",
                                         "mail.example.com", "research.example"};

struct Options {
  std::string database;
  std::size_t messages = 0;
  int workers = 0;
  std::size_t batch = 0;
  std::optional<pid_t> server_pid;
  bool json = false;
};

struct WorkerStats {
  std::size_t messages = 0;
  std::size_t claims = 0;  // the claims that returned messages
  double claim_seconds = 0;
  double record_seconds = 0;
  double loop_seconds = 0;     // the whole loop: the two calls and building the outcomes
  std::vector<MessageId> ids;  // every message it claimed, for the check
  std::string error;           // what it threw, if it did
};

std::optional<long long> positive(std::string_view text) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v <= 0) return std::nullopt;
  return v;
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--json") {
      o.json = true;
      continue;
    }
    if (i + 1 >= argc) return std::nullopt;
    std::string_view value = argv[++i];
    std::optional<long long> n = positive(value);
    if (flag == "--database") {
      o.database = value;
    } else if (flag == "--messages" && n) {
      o.messages = static_cast<std::size_t>(*n);
    } else if (flag == "--workers" && n && *n <= 64) {
      o.workers = static_cast<int>(*n);
    } else if (flag == "--batch" && n) {
      o.batch = static_cast<std::size_t>(*n);
    } else if (flag == "--server-pid" && n) {
      o.server_pid = static_cast<pid_t>(*n);
    } else {
      return std::nullopt;
    }
  }
  if (o.database.empty() || !o.messages || !o.workers || !o.batch) return std::nullopt;
  return o;
}

std::unique_ptr<Store> open_store(const std::string& database) {
  if (names_postgresql(database)) return std::make_unique<PostgresStore>(database);
  return std::make_unique<SqliteStore>(database);
}

double seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

// This process's CPU time, every thread's, user and system.
double own_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// The CPU time of process `pid` and of its children, living and ended, from /proc: for a
// PostgreSQL server, the postmaster, a backend per connection and the background processes.
// nullopt when there is no such process.
std::optional<double> server_cpu_seconds(pid_t pid) {
  long long ticks = 0;
  bool found = false;
  std::error_code ec;  // processes come and go while we read: skip what cannot be read
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(it->path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;  // ended meanwhile
    std::size_t close = line.rfind(')');    // the command name may hold spaces and parentheses
    if (close == std::string::npos) continue;
    // After the name (field 2): state, ppid (4), ... utime (14), stime, cutime, cstime (17).
    std::istringstream fields(line.substr(close + 1));
    std::string state;
    long long ppid = 0, skip = 0, utime = 0, stime = 0, cutime = 0, cstime = 0;
    fields >> state >> ppid;
    for (int f = 5; f <= 13; ++f) fields >> skip;
    if (!(fields >> utime >> stime >> cutime >> cstime)) continue;
    bool self = std::stoll(name) == pid;
    found = found || self;
    if (self || ppid == pid) ticks += utime + stime + cutime + cstime;
  }
  if (!found) return std::nullopt;
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Runs fn(i) for each of `workers` on a thread of its own and waits for them all; what a worker
// throws is kept in errors[i].
void run_workers(int workers, std::vector<std::string>& errors,
                 const std::function<void(int)>& fn) {
  errors.assign(static_cast<std::size_t>(workers), "");
  std::vector<std::thread> threads;
  for (int i = 0; i < workers; ++i) {
    threads.emplace_back([&, i] {
      try {
        fn(i);
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(i)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
}

// Messages [first, first + count): one campaign, a few domains, small variables.
std::vector<NewMessage> make_messages(std::size_t first, std::size_t count) {
  std::vector<NewMessage> out;
  out.reserve(count);
  for (std::size_t i = first; i < first + count; ++i) {
    out.push_back(
        {"store-bench", "customer-update",
         "user" + std::to_string(i) + "@" + std::string(kDomains[i % std::size(kDomains)]),
         R"({"first_name":"Pat","headline":"Your fiber speed is doubling"})"});
  }
  return out;
}

// Worker i enqueues batches i, i + W, ...: not timed as the drain is. Throws when a message is
// not queued (the database was not empty after all).
void fill(Store& store, int worker, int workers, std::size_t messages) {
  for (std::size_t first = static_cast<std::size_t>(worker) * kEnqueueBatch; first < messages;
       first += static_cast<std::size_t>(workers) * kEnqueueBatch) {
    auto batch = make_messages(first, std::min(kEnqueueBatch, messages - first));
    for (const EnqueueResult& r : store.enqueue(batch, "store_bench", now_millis())) {
      if (r.status != EnqueueStatus::queued) throw std::runtime_error("a message was not queued");
    }
  }
}

// What a sender hands back for a message the relay accepted (delivery/outcome.cpp), ending the
// claim that leased it.
Outcome sent_outcome(const ClaimedMessage& m) {
  Outcome o;
  o.id = m.id;
  o.state = MessageState::sent;
  o.reply_code = 250;
  o.reply = "250 2.0.0 Ok: queued as " + std::to_string(m.id);
  o.message_id_header = "<" + std::to_string(m.id) + ".bench@mail.example.com>";
  o.lease_owner = m.lease_owner;
  o.claimed_attempts = m.attempts;
  return o;
}

void drain(Store& store, const std::string& owner, std::size_t batch, WorkerStats& w) {
  std::vector<Outcome> outcomes;
  outcomes.reserve(batch);
  const auto start = SteadyClock::now();
  for (;;) {
    const auto t0 = SteadyClock::now();
    const UnixMillis now = now_millis();
    std::vector<ClaimedMessage> claimed = store.claim_due(owner, batch, now, now + kLeaseMillis);
    w.claim_seconds += seconds(SteadyClock::now() - t0);
    if (claimed.empty()) break;  // nothing due: the others hold the rest
    outcomes.clear();
    for (const ClaimedMessage& m : claimed) {
      outcomes.push_back(sent_outcome(m));
      w.ids.push_back(m.id);
    }
    const auto t1 = SteadyClock::now();
    store.record_outcomes(outcomes, now_millis());
    w.record_seconds += seconds(SteadyClock::now() - t1);
    w.messages += claimed.size();
    ++w.claims;
  }
  w.loop_seconds = seconds(SteadyClock::now() - start);
}

struct Measured {
  double fill_seconds = 0;
  double drain_seconds = 0;
  double client_cpu = 0;
  std::optional<double> server_cpu;
  std::vector<WorkerStats> workers;
  std::int64_t sent = 0;
  std::vector<std::string> problems;  // empty: every message claimed once and sent
};

// Every message claimed exactly once, none left unsent, no worker failed.
void check(const Options& o, Store& store, Measured& r) {
  std::vector<MessageId> ids;
  for (std::size_t i = 0; i < r.workers.size(); ++i) {
    const WorkerStats& w = r.workers[i];
    if (!w.error.empty()) r.problems.push_back("worker " + std::to_string(i) + ": " + w.error);
    ids.insert(ids.end(), w.ids.begin(), w.ids.end());
  }
  std::sort(ids.begin(), ids.end());
  auto twice = ids.size() - static_cast<std::size_t>(
                                std::distance(ids.begin(), std::unique(ids.begin(), ids.end())));
  if (twice) r.problems.push_back(std::to_string(twice) + " messages claimed twice");
  StateCounts counts = store.counts(std::nullopt);
  r.sent = counts[MessageState::sent];
  std::int64_t total =
      std::accumulate(counts.by_state.begin(), counts.by_state.end(), std::int64_t{0});
  if (r.sent != static_cast<std::int64_t>(o.messages) || total != r.sent) {
    r.problems.push_back(std::to_string(r.sent) + " of " + std::to_string(total) +
                         " messages sent, " + std::to_string(o.messages) + " queued");
  }
}

Measured run(const Options& o) {
  Measured r;
  std::unique_ptr<Store> main_store = open_store(o.database);  // creates and migrates it
  StateCounts before = main_store->counts(std::nullopt);
  if (std::accumulate(before.by_state.begin(), before.by_state.end(), std::int64_t{0}) != 0) {
    throw std::runtime_error("the database holds messages already: give store_bench a new one");
  }
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < o.workers; ++i) stores.push_back(open_store(o.database));
  std::vector<std::string> errors;

  auto t0 = SteadyClock::now();
  run_workers(o.workers, errors,
              [&](int i) { fill(*stores[static_cast<std::size_t>(i)], i, o.workers, o.messages); });
  r.fill_seconds = seconds(SteadyClock::now() - t0);
  for (const std::string& e : errors) {
    if (!e.empty()) throw std::runtime_error("filling the queue: " + e);
  }

  // The worker stores stay open until the second sample, so every server process they use is
  // counted alive in both.
  r.workers.resize(static_cast<std::size_t>(o.workers));
  std::optional<double> server_before =
      o.server_pid ? server_cpu_seconds(*o.server_pid) : std::nullopt;
  if (o.server_pid && !server_before) {
    throw std::runtime_error("--server-pid: no process " + std::to_string(*o.server_pid));
  }
  double cpu_before = own_cpu_seconds();
  t0 = SteadyClock::now();
  run_workers(o.workers, errors, [&](int i) {
    std::string owner = "store_bench-" + std::to_string(getpid()) + "-w" + std::to_string(i);
    drain(*stores[static_cast<std::size_t>(i)], owner, o.batch,
          r.workers[static_cast<std::size_t>(i)]);
  });
  r.drain_seconds = seconds(SteadyClock::now() - t0);
  r.client_cpu = own_cpu_seconds() - cpu_before;
  if (server_before) {
    if (auto after = server_cpu_seconds(*o.server_pid)) r.server_cpu = *after - *server_before;
  }
  for (std::size_t i = 0; i < errors.size(); ++i) r.workers[i].error = errors[i];
  check(o, *main_store, r);
  return r;
}

// The workers' time, summed: inside claim_due, inside record_outcomes, and the whole loops.
struct Split {
  double claim = 0, record = 0, loop = 0;
};
Split split(const Measured& r) {
  Split s;
  for (const WorkerStats& w : r.workers) {
    s.claim += w.claim_seconds;
    s.record += w.record_seconds;
    s.loop += w.loop_seconds;
  }
  return s;
}

void print_json(const Options& o, const Measured& r) {
  const Split s = split(r);
  const double n = static_cast<double>(o.messages);
  std::printf(
      "{\"backend\": \"%s\", \"workers\": %d, \"batch\": %zu, \"messages\": %zu, "
      "\"fill_seconds\": %.3f, \"drain_seconds\": %.3f, \"msgs_per_s\": %.1f, "
      "\"claim_share\": %.4f, \"record_share\": %.4f, \"client_cpu_us_per_msg\": %.2f, ",
      names_postgresql(o.database) ? "postgresql" : "sqlite", o.workers, o.batch, o.messages,
      r.fill_seconds, r.drain_seconds, n / r.drain_seconds, s.claim / s.loop, s.record / s.loop,
      r.client_cpu * 1e6 / n);
  if (r.server_cpu) {
    std::printf("\"server_cpu_us_per_msg\": %.2f, ", *r.server_cpu * 1e6 / n);
  } else {
    std::printf("\"server_cpu_us_per_msg\": null, ");
  }
  std::printf("\"sent\": %lld, \"ok\": %s, \"per_worker\": [", static_cast<long long>(r.sent),
              r.problems.empty() ? "true" : "false");
  for (std::size_t i = 0; i < r.workers.size(); ++i) {
    const WorkerStats& w = r.workers[i];
    std::printf(
        "%s{\"messages\": %zu, \"claims\": %zu, \"claim_seconds\": %.3f, "
        "\"record_seconds\": %.3f, \"loop_seconds\": %.3f}",
        i ? ", " : "", w.messages, w.claims, w.claim_seconds, w.record_seconds, w.loop_seconds);
  }
  std::printf("]}\n");
}

void print_line(const Options& o, const Measured& r) {
  const Split s = split(r);
  const double n = static_cast<double>(o.messages);
  std::printf(
      "%s, %d workers, batch %zu: %zu messages drained in %.2f s, %.0f msg/s; worker "
      "time: claim %.1f%%, record %.1f%% (",
      names_postgresql(o.database) ? "postgresql" : "sqlite", o.workers, o.batch, o.messages,
      r.drain_seconds, n / r.drain_seconds, 100 * s.claim / s.loop, 100 * s.record / s.loop);
  for (std::size_t i = 0; i < r.workers.size(); ++i) {
    std::printf("%sw%zu %.2f/%.2f s", i ? ", " : "", i, r.workers[i].claim_seconds,
                r.workers[i].record_seconds);
  }
  std::printf("); CPU per message: client %.1f us", r.client_cpu * 1e6 / n);
  if (r.server_cpu) std::printf(", server %.1f us", *r.server_cpu * 1e6 / n);
  std::printf("; filled at %.0f msg/s; %lld sent\n", n / r.fill_seconds,
              static_cast<long long>(r.sent));
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> o = parse_options(argc, argv);
  if (!o) {
    std::fprintf(stderr,
                 "usage: %s --database (FILE.db|postgresql://...) --messages N --workers W "
                 "--batch B [--server-pid PID] [--json]\n",
                 argv[0]);
    return 2;
  }
  Measured r;
  try {
    r = run(*o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_bench: %s\n", e.what());
    return 1;
  }
  if (o->json) {
    print_json(*o, r);
  } else {
    print_line(*o, r);
  }
  for (const std::string& p : r.problems)
    std::fprintf(stderr, "store_bench: FAILED: %s\n", p.c_str());
  return r.problems.empty() ? 0 : 1;
}
