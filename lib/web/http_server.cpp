#include "web/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <optional>
#include <vector>

#include "base/log.h"
#include "base/text.h"
#include "web/http_framing.h"

namespace bulkmail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

HttpResponse plain(http::status status, std::string text) {
  HttpResponse res{status, 11};
  res.set(http::field::server, "bulkmail");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = std::move(text);
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

// IPv4-mapped IPv6 addresses (a dual-stack listener's IPv4 clients) as the IPv4 ones.
asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

// The key a client's connections are counted under: its IPv4 address, or its IPv6 /64.
asio::ip::address client_key(const asio::ip::address& a) {
  if (a.is_v4()) return a;
  asio::ip::address_v6::bytes_type bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes);
}

}  // namespace

ConnectionBudget::ConnectionBudget(const HttpLimits& limits)
    : max_connections_(limits.max_connections),
      per_client_(limits.max_connections_per_client),
      loopback_reserve_(limits.loopback_reserve) {}

ConnectionBudget::Verdict ConnectionBudget::admit(const asio::ip::address& client) {
  asio::ip::address a = unmapped(client);
  asio::ip::address key = client_key(a);
  // Loopback keeps its reserve past both caps: behind a reverse proxy on the same host, the proxy
  // is the one loopback client holding every connection, and a local /healthz must still answer.
  std::size_t reserve = a.is_loopback() ? loopback_reserve_ : 0;
  std::size_t limit = max_connections_ + reserve;
  std::lock_guard lock(mu_);
  auto it = by_client_.find(key);
  std::size_t mine = it == by_client_.end() ? 0 : it->second;
  if (mine >= per_client_ + reserve) return Verdict::client_full;
  if (held_ >= limit) return Verdict::server_full;
  ++held_;
  ++by_client_[key];
  return Verdict::admitted;
}

void ConnectionBudget::release(const asio::ip::address& client) {
  asio::ip::address key = client_key(unmapped(client));
  std::lock_guard lock(mu_);
  auto it = by_client_.find(key);
  if (it == by_client_.end()) return;  // not admitted: nothing to give back
  if (--it->second == 0) by_client_.erase(it);
  --held_;
}

// One connection. Every step runs on the connection's strand; answers from other threads are
// posted to it.
class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  // `admitted`: the client address whose place in the budget this connection holds, if any.
  Session(tcp::socket socket, HttpServer& server, std::optional<asio::ip::address> admitted)
      : stream_(std::move(socket)),
        server_(server),
        admitted_(std::move(admitted)),
        read_deadline_(stream_.get_executor()),
        deadline_(stream_.get_executor()) {}

  ~Session() {
    if (admitted_) server_.budget_.release(*admitted_);
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  // No room for this connection: one short answer, then close.
  void refuse(HttpRefusal why, std::string text) {
    server_.count(why);
    asio::dispatch(stream_.get_executor(), [self = shared_from_this(), text = std::move(text)] {
      HttpResponse res = plain(http::status::service_unavailable, text);
      res.set(http::field::retry_after, "1");
      self->send(std::move(res), /*close=*/true);
    });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits_.header_bytes));
    parser_->body_limit(server_.limits_.body_bytes);
    // One deadline for the whole request, header and body: trickling bytes does not extend it.
    // It is a timer of our own rather than the stream's: the stream closes the socket when its
    // time is up, and then there is no way left to answer 408.
    ++reads_;
    reading_ = true;
    timed_out_ = false;
    stream_.expires_never();
    read_deadline_.expires_after(server_.limits_.read_timeout);
    read_deadline_.async_wait([self = shared_from_this(), read = reads_](beast::error_code ec) {
      if (ec || !self->reading_ || read != self->reads_) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);  // the read ends with operation_aborted
    });
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec || timed_out_) return on_read_error(ec);
    if (auto problem = framing_problem(parser_->get())) {
      server_.count(problem->status == http::status::not_implemented
                        ? HttpRefusal::unsupported_coding
                        : HttpRefusal::malformed);
      return send(plain(problem->status, std::move(problem->text)), /*close=*/true);
    }
    // curl and others wait for "100 Continue" before sending a larger body.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
                          if (self->timed_out_) return self->on_read_error(ec);
                          if (ec) return self->close();  // the client has gone
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec || self->timed_out_) return self->on_read_error(ec);
                       self->on_request();
                     });
  }

  void on_read_error(beast::error_code ec) {
    if (timed_out_) {
      // A request begun and not finished in time hears why; an idle keep-alive connection just
      // ends.
      if (parser_ && parser_->got_some()) {
        server_.count(HttpRefusal::read_timeout);
        return send(plain(http::status::request_timeout, "request timeout\n"), /*close=*/true);
      }
      return close();
    }
    // The client hung up: before a request, or partway through one (partial_message: its FIN
    // came before the request's end). Nobody is left to answer, and nothing is counted.
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec == http::error::header_limit) {
      server_.count(HttpRefusal::header_too_large);
      return send(plain(http::status::request_header_fields_too_large,
                        "request header too large (limit " +
                            std::to_string(server_.limits_.header_bytes) + " bytes)\n"),
                  true);
    }
    if (ec == http::error::body_limit) {
      server_.count(HttpRefusal::body_too_large);
      return send(plain(http::status::payload_too_large,
                        "request body too large (limit " +
                            std::to_string(server_.limits_.body_bytes) + " bytes)\n"),
                  true);
    }
    // Anything else is a malformed request: say so and close, since the stream cannot be trusted
    // to be at the start of a next request.
    server_.count(HttpRefusal::malformed);
    send(plain(http::status::bad_request, "malformed request: " + ec.message() + "\n"), true);
  }

  // The request is read (or given up on): its deadline no longer applies.
  void stop_reading() {
    reading_ = false;
    read_deadline_.cancel();
  }

  void on_request() {
    stop_reading();
    HttpRequest req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    answered_ = std::make_shared<std::atomic<bool>>(false);
    // If the route does not answer in time, answer 503 for it; a late answer is dropped.
    deadline_.expires_after(server_.limits_.answer_timeout);
    deadline_.async_wait([self = shared_from_this(), answered = answered_](beast::error_code ec) {
      if (ec || answered->exchange(true)) return;
      self->server_.count(HttpRefusal::no_answer);
      HttpResponse res = plain(http::status::service_unavailable, "no answer in time\n");
      res.keep_alive(false);
      self->respond(std::move(res));
    });
    Responder answer = [self = shared_from_this(), answered = answered_](HttpResponse res) {
      if (answered->exchange(true)) return;
      asio::post(self->stream_.get_executor(),
                 [self, res = std::move(res)]() mutable { self->respond(std::move(res)); });
    };
    try {
      server_.handler_(std::move(req), std::move(answer));
    } catch (const std::exception& e) {
      log_error(std::string("webhook request failed: ") + e.what());
      if (!answered_->exchange(true)) {
        respond(plain(http::status::internal_server_error, "internal error\n"));
      }
    }
  }

  void respond(HttpResponse res) {
    deadline_.cancel();
    res.version(version_);
    bool close = !keep_alive_ || !res.keep_alive();
    res.keep_alive(!close);
    if (head_ && !res.body().empty()) {
      auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    send(std::move(res), close);
  }

  void send(HttpResponse res, bool close) {
    stop_reading();
    auto msg = std::make_shared<HttpResponse>(std::move(res));
    if (close) msg->keep_alive(false);
    // A client that does not read its answer is cut off like one that does not send.
    stream_.expires_after(server_.limits_.read_timeout);
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg, close](beast::error_code ec, std::size_t) {
                        if (ec || close) return self->close();
                        self->read();
                      });
  }

  void close() {
    stop_reading();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer& server_;
  std::optional<asio::ip::address> admitted_;
  beast::flat_buffer buffer_{8192};
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer read_deadline_;
  std::uint64_t reads_ = 0;  // which read() the pending read deadline belongs to
  bool reading_ = false;     // a request is being read: its deadline applies
  bool timed_out_ = false;   // the read deadline cut the current read short
  asio::steady_timer deadline_;
  std::shared_ptr<std::atomic<bool>> answered_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
};

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler, RefusalCounter refused)
    : limits_(limits),
      handler_(std::move(handler)),
      refused_(std::move(refused)),
      budget_(limits_),
      acceptor_(io_),
      accept_retry_(io_) {}

HttpServer::~HttpServer() { stop(); }

Result<void> HttpServer::listen(const std::string& host, std::uint16_t port) {
  std::string where =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return make_error("cannot listen on " + where + ": not an IP address");
  tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error("cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  return {};
}

void HttpServer::start(int threads) {
  accept();
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void HttpServer::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    // A client that gave up while waiting in the backlog is no failure of ours.
    if (ec && ec != asio::error::connection_aborted) return accept_failed(ec);
    if (!ec) {
      if (accept_failing_) {
        accept_failing_ = false;
        log_info("webhook: accepting connections again");
      }
      serve(std::move(socket));
    }
    accept();
  });
}

void HttpServer::accept_failed(const beast::error_code& ec) {
  // Out of file descriptors (EMFILE, ENFILE) or memory: the connection stays in the backlog, the
  // listening socket stays readable and accepting again at once fails again at once, a loop that
  // would take a whole core. Wait instead; the connections already open are served meanwhile, and
  // those that close free descriptors.
  if (!accept_failing_) {
    accept_failing_ = true;
    log_warning("webhook: cannot accept connections (" + ec.message() + "); trying again every " +
                std::to_string(limits_.accept_retry.count()) +
                " ms, serving the connections already open");
  }
  accept_retry_.expires_after(limits_.accept_retry);
  accept_retry_.async_wait([this](beast::error_code ec) {
    if (!ec && acceptor_.is_open()) accept();
  });
}

void HttpServer::serve(tcp::socket socket) {
  beast::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // the client has already gone; the socket closes here
  socket.set_option(tcp::no_delay(true), ec);
  ConnectionBudget::Verdict verdict = budget_.admit(peer.address());
  std::optional<asio::ip::address> admitted;
  if (verdict == ConnectionBudget::Verdict::admitted) admitted = peer.address();
  auto session = std::make_shared<Session>(std::move(socket), *this, admitted);
  switch (verdict) {
    case ConnectionBudget::Verdict::admitted:
      return session->start();
    case ConnectionBudget::Verdict::server_full:
      return session->refuse(HttpRefusal::server_full, "too many connections\n");
    case ConnectionBudget::Verdict::client_full:
      return session->refuse(HttpRefusal::client_full, "too many connections from your address\n");
  }
}

void HttpServer::stop() {
  if (threads_.empty() && !acceptor_.is_open()) return;
  io_.stop();  // connections still open are closed when io_ destroys their handlers
  for (auto& t : threads_) t.join();
  threads_.clear();
  beast::error_code ignored;
  if (acceptor_.is_open()) acceptor_.close(ignored);
}

}  // namespace bulkmail
