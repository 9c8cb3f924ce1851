// Composition speed: render + compose (+ DKIM sign) of a ~4 KB customer update, against OpenSSL's
// own signing of one SHA-256 digest in the same process as the reference. bench/compose runs it
// and prints the table recorded in BENCHMARKS.md.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "compose/composer.h"
#include "web/metrics.h"

using namespace bulkmail;
namespace fs = std::filesystem;

namespace {

// A config in a scratch folder, using the shipped templates, with an optional DKIM key.
std::shared_ptr<const Config> make_config(const std::string& algorithm) {
  static int n = 0;
  fs::path dir = fs::temp_directory_path() /
                 ("bulkmail-bench-" + std::to_string(getpid()) + "-" + std::to_string(n++));
  fs::create_directories(dir);
  std::ofstream(dir / "unsubscribe.key") << std::string(64, 'k') << "\n";
  std::string yaml =
      std::string("templates: ") + BULKMAIL_SOURCE_DIR + "/templates\n" +
      "sender:\n  organization: Example Telecom, Inc.\n"
      "  postal_address: 100 Example Parkway, Cary, NC 27513, USA\n"
      "  from: \"Example Telecom <updates@mail.example.com>\"\n"
      "smtp:\n  url: smtp://127.0.0.1:2525\n"
      "unsubscribe:\n  url: https://mail.example.com/unsubscribe\n  secret_file: unsubscribe.key\n"
      "categories:\n  customer-update: { template: customer-update, description: Updates about "
      "your services }\n";
  if (!algorithm.empty()) {
    std::string gen = "openssl genpkey -out " + (dir / "dkim.pem").string() +
                      (algorithm == "ed25519" ? " -algorithm ed25519"
                                              : " -algorithm RSA -pkeyopt rsa_keygen_bits:2048") +
                      " 2>/dev/null";
    if (std::system(gen.c_str()) != 0) std::abort();
    yaml += "dkim:\n  domain: mail.example.com\n  selector: s1\n  key_file: dkim.pem\n";
  }
  std::ofstream(dir / "bulkmail.yaml") << yaml;
  auto load = load_config(dir / "bulkmail.yaml");
  if (!load.ok()) {
    fprintf(stderr, "%s\n", load.errors[0].str().c_str());
    std::abort();
  }
  fs::remove_all(dir);
  return load.config;
}

Vars message_vars() {
  std::string body;
  while (body.size() < 200) {
    body +=
        "Starting December 1, your home fiber plan moves from 500 Mbps to 1 Gbps, at no extra "
        "cost. ";
  }
  return {{"first_name", "Jane"},
          {"headline", "Your fiber speed is doubling, at no extra cost"},
          {"body", body}};
}

void compose_loop(benchmark::State& state, const std::string& algorithm) {
  auto composer = Composer::create(make_config(algorithm));
  if (!composer) std::abort();
  Vars vars = message_vars();
  ComposeRequest req{"customer-update", "jane.doe@example.com", vars, "nov-2026", 1,
                     1'795'000'000'000};
  ComposeScratch scratch;  // as a Sender holds it: the hot path
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto m = (*composer)->compose(req, scratch);
    if (!m) std::abort();
    bytes = m->data.size();
    benchmark::DoNotOptimize(m->data.data());
    ++req.id;
  }
  state.counters["msg/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["bytes"] = static_cast<double>(bytes);
}

void BM_compose_unsigned(benchmark::State& s) { compose_loop(s, ""); }
void BM_compose_ed25519(benchmark::State& s) { compose_loop(s, "ed25519"); }
void BM_compose_rsa2048(benchmark::State& s) { compose_loop(s, "rsa"); }

// DKIM signing alone of an already composed message: canonicalize, hash, sign.
void dkim_loop(benchmark::State& state, const std::string& algorithm) {
  auto config = make_config(algorithm);
  auto composer = Composer::create(make_config(""));
  ComposeScratch scratch;
  auto m = (*composer)->compose(
      {"customer-update", "jane.doe@example.com", message_vars(), "nov", 1, 1'795'000'000'000},
      scratch);
  DkimSigner signer(*config->dkim->key, "mail.example.com", "s1");
  const std::vector<std::string> headers = {"From",
                                            "To",
                                            "Subject",
                                            "Date",
                                            "Message-ID",
                                            "MIME-Version",
                                            "Content-Type",
                                            "List-Unsubscribe",
                                            "List-Unsubscribe-Post",
                                            "List-Id"};
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        signer.signature(m->data, headers, 1'795'000'000'000, scratch.dkim_canon));
  }
  state.counters["msg/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_dkim_sign_ed25519(benchmark::State& s) { dkim_loop(s, "ed25519"); }
void BM_dkim_sign_rsa2048(benchmark::State& s) { dkim_loop(s, "rsa"); }

// The reference: OpenSSL signing one 32-byte digest with the same kind of key, as `openssl speed`.
void raw_sign_loop(benchmark::State& state, const std::string& algorithm) {
  auto config = make_config(algorithm);
  const DkimKey& key = *config->dkim->key;
  std::string digest(32, 'x');
  for (auto _ : state) benchmark::DoNotOptimize(key.sign(digest));
  state.counters["msg/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_openssl_sign_ed25519(benchmark::State& s) { raw_sign_loop(s, "ed25519"); }
void BM_openssl_sign_rsa2048(benchmark::State& s) { raw_sign_loop(s, "rsa"); }

// One /metrics scrape's text, from numbers like a busy daemon's: what the webhook does per scrape
// besides asking the store and the loop for them.
void BM_metrics_scrape(benchmark::State& state) {
  StateCounts counts;
  for (std::size_t i = 0; i < counts.by_state.size(); ++i) {
    counts.by_state[i] = 1'000'003 * static_cast<std::int64_t>(i + 1);
  }
  DispatchStats d;
  d.sent = 12'345'678;
  d.deferred = 4321;
  d.failed = 321;
  d.in_flight = 16;
  WebhookCounters web;
  for (int i = 0; i < 1000; ++i) {
    web.request("unsubscribe", 200);
    web.request("api", i % 7 ? 201 : 400);
    web.unsubscribe(i % 3 ? "one-click" : "web");
  }
  auto snapshot = web.snapshot();
  for (auto _ : state) benchmark::DoNotOptimize(prometheus_text(counts, d, snapshot));
  state.counters["scrapes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_compose_unsigned);
BENCHMARK(BM_compose_ed25519);
BENCHMARK(BM_compose_rsa2048);
BENCHMARK(BM_dkim_sign_ed25519);
BENCHMARK(BM_dkim_sign_rsa2048);
BENCHMARK(BM_openssl_sign_ed25519);
BENCHMARK(BM_openssl_sign_rsa2048);
BENCHMARK(BM_metrics_scrape);
BENCHMARK_MAIN();
