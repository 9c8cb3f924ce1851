// Whole HTTP requests through the webhook: the bytes a client sends, read as the HTTP server
// reads them (Beast's parser with the server's limits, then its framing check), each request
// answered by the webhook's routes against a real queue file. Up to eight requests a connection,
// as a client pipelining them would send.
//
// BULKMAIL_FUZZ_TRACE=1 prints each request's method, target and status: what a corpus reaches.
//
// Properties: every request is answered exactly once, never with 500 (a route that threw);
// no answer carries a line break inside a header field; a target holding '<' is never echoed raw
// into an answer; nothing is suppressed without a token that verifies for that address, and the
// API changes nothing without its bearer token.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "base/clock.h"
#include "crypto/unsubscribe_token.h"
#include "fuzz_check.h"
#include "sandbox.h"
#include "store/sqlite/sqlite_store.h"
#include "web/http_framing.h"
#include "web/http_server.h"
#include "web/webhook.h"

using namespace bulkmail;
namespace http = boost::beast::http;

namespace {

// The request being answered, for the backend to check what it is asked against.
const HttpRequest* current = nullptr;

bool authorized(const HttpRequest& req) {
  return req[http::field::authorization] == "Bearer " + std::string(fuzz::kApiToken);
}

// The request's path, without its query, as the webhook splits it.
std::string_view path_of(const HttpRequest& req) {
  std::string_view target(req.target().data(), req.target().size());
  return target.substr(0, target.find('?'));
}

// Answers at once, on the caller's thread, from the sandbox's queue file.
class Backend : public WebhookBackend {
 public:
  // Only a link's opt-out comes here (the API suppresses through write()): whatever else the
  // request carries, the token in its path must verify, for this address and category.
  void opt_out(Suppression s, std::function<void(bool)> done) override {
    FUZZ_CHECK(current != nullptr);
    const UnsubscribeConfig& u = fuzz::sandbox_config()->unsubscribe;
    static const TokenCodec codec(u.keys, u.token_expiry_days);
    std::string_view path = path_of(*current);
    FUZZ_CHECK(path.substr(0, u.path.size() + 1) == u.path + "/");
    TokenCheck check = codec.verify(path.substr(u.path.size() + 1), now_millis());
    FUZZ_CHECK(check.status == TokenStatus::valid);
    FUZZ_CHECK(check.claims.address == s.address);
    FUZZ_CHECK(s.category.empty() || s.category == check.claims.category);
    store().suppress({&s, 1}, now_millis());
    done(true);
  }
  void write(std::function<void(Store&)> fn) override {
    FUZZ_CHECK(current != nullptr && authorized(*current));
    fn(store());
  }
  // The API's reads need its token; /healthz and /metrics are for anyone.
  void read(std::function<void(Store&)> fn) override {
    FUZZ_CHECK(current != nullptr);
    std::string_view path = path_of(*current);
    FUZZ_CHECK(authorized(*current) || path == "/healthz" || path == "/metrics");
    fn(store());
  }
  void dispatch_stats(std::function<void(DispatchStats)> done) override { done(DispatchStats{}); }

  // A fresh queue now and then, so that what the API queues does not pile up over a campaign.
  void next_input() {
    if (++inputs_ % 5000 == 0) store_.reset();
  }

 private:
  SqliteStore& store() {
    if (!store_) {
      std::filesystem::path db = fuzz::sandbox() / "q.db";
      std::filesystem::remove(db);
      std::filesystem::remove(db.string() + "-wal");
      std::filesystem::remove(db.string() + "-shm");
      store_ = std::make_unique<SqliteStore>(db.string());
    }
    return *store_;
  }
  std::unique_ptr<SqliteStore> store_;
  std::size_t inputs_ = 0;
};

void check_answer(const HttpRequest& req, const std::optional<HttpResponse>& answer) {
  FUZZ_CHECK(answer.has_value());
  FUZZ_CHECK(answer->result() != http::status::internal_server_error);
  for (const auto& field : *answer)
    FUZZ_CHECK(!fuzz::has_line_break({field.value().data(), field.value().size()}));
  std::string_view target(req.target().data(), req.target().size());
  if (target.size() >= 4 && target.find('<') != std::string_view::npos)
    FUZZ_CHECK(answer->body().find(target) == std::string::npos);
}

// Reads one request off the front of `bytes` as the HTTP server would; nullopt when the server
// would answer it itself (400, 413, 431, 501), wait for more, or close the connection.
std::optional<HttpRequest> read_request(std::string_view& bytes) {
  http::request_parser<http::string_body> parser;
  static const HttpLimits limits;  // the server's defaults, as bulkmaild runs with them
  parser.header_limit(static_cast<std::uint32_t>(limits.header_bytes));
  parser.body_limit(limits.body_bytes);
  parser.eager(true);
  bool checked = false;
  while (!parser.is_done()) {
    boost::beast::error_code ec;
    std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    bytes.remove_prefix(used);
    if (ec || (used == 0 && !parser.is_done())) return std::nullopt;
    if (parser.is_header_done() && !checked) {
      if (framing_problem(parser.get())) return std::nullopt;
      checked = true;
    }
  }
  return parser.release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  static Backend backend;
  static Webhook webhook(fuzz::sandbox_config(), backend);
  backend.next_input();
  std::string_view bytes = fuzz::text(data, size);
  for (int i = 0; i < 8 && !bytes.empty(); ++i) {
    auto req = read_request(bytes);
    if (!req) break;
    std::optional<HttpResponse> answer;
    int answers = 0;
    current = &*req;
    webhook.handle(*req, [&](HttpResponse r) {
      ++answers;
      answer = std::move(r);
    });
    current = nullptr;
    FUZZ_CHECK(answers == 1);
    check_answer(*req, answer);
    static const bool trace = std::getenv("BULKMAIL_FUZZ_TRACE") != nullptr;
    if (trace) {
      std::fprintf(stderr, "%s %.60s -> %d\n", std::string(req->method_string()).c_str(),
                   std::string(req->target()).c_str(), answer->result_int());
    }
    if (!req->keep_alive()) break;
  }
  return 0;
}
