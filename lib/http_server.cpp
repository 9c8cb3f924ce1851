#include "http_server.h"

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

#include <optional>

#include "log.h"

namespace bulkmail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One connection. Every step runs on the connection's strand; answers from other threads are
// posted to it.
class HttpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer& server)
      : stream_(std::move(socket)), server_(server), deadline_(stream_.get_executor()) {}

  ~Session() { --server_.open_; }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  // Too many connections already: one short answer, then close.
  void refuse() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      HttpResponse res{http::status::service_unavailable, 11};
      res.set(http::field::server, "bulkmail");
      res.set(http::field::retry_after, "1");
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "too many connections\n";
      res.keep_alive(false);
      res.prepare_payload();
      self->send(std::move(res), /*close=*/true);
    });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits_.header_bytes));
    parser_->body_limit(server_.limits_.body_bytes);
    // One deadline for the whole request, header and body: trickling bytes does not extend it.
    stream_.expires_after(server_.limits_.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    // curl and others wait for "100 Continue" before sending a larger body.
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
                          if (ec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->on_read_error(ec);
                       self->on_request();
                     });
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec == beast::error::timeout) {
      // A request started and did not finish in time; an idle keep-alive connection just ends.
      if (parser_ && parser_->got_some())
        return send(plain(http::status::request_timeout, "request timeout\n"), true);
      return close();
    }
    if (ec == http::error::header_limit) {
      return send(plain(http::status::request_header_fields_too_large,
                        "request header too large (limit " +
                            std::to_string(server_.limits_.header_bytes) + " bytes)\n"),
                  true);
    }
    if (ec == http::error::body_limit) {
      return send(plain(http::status::payload_too_large,
                        "request body too large (limit " +
                            std::to_string(server_.limits_.body_bytes) + " bytes)\n"),
                  true);
    }
    // Anything else is a malformed request: say so and close, since the stream cannot be trusted
    // to be at the start of a next request.
    send(plain(http::status::bad_request, "malformed request: " + ec.message() + "\n"), true);
  }

  static HttpResponse plain(http::status status, std::string text) {
    HttpResponse res{status, 11};
    res.set(http::field::server, "bulkmail");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(text);
    res.keep_alive(false);
    res.prepare_payload();
    return res;
  }

  void on_request() {
    stream_.expires_never();
    HttpRequest req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    answered_ = std::make_shared<std::atomic<bool>>(false);
    // If the route does not answer in time, answer 503 for it; a late answer is dropped.
    deadline_.expires_after(server_.limits_.answer_timeout);
    deadline_.async_wait([self = shared_from_this(), answered = answered_](beast::error_code ec) {
      if (ec || answered->exchange(true)) return;
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
    auto msg = std::make_shared<HttpResponse>(std::move(res));
    if (close) msg->keep_alive(false);
    stream_.expires_after(server_.limits_.read_timeout);
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg, close](beast::error_code ec, std::size_t) {
                        if (ec || close) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer& server_;
  beast::flat_buffer buffer_{8192};
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer deadline_;
  std::shared_ptr<std::atomic<bool>> answered_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
};

HttpServer::HttpServer(HttpLimits limits, HttpHandler handler)
    : limits_(limits), handler_(std::move(handler)), acceptor_(io_) {}

HttpServer::~HttpServer() { stop(); }

Result<bool> HttpServer::listen(const std::string& host, std::uint16_t port) {
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
  return true;
}

void HttpServer::start(int threads) {
  accept();
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void HttpServer::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::size_t open = ++open_;
      auto session = std::make_shared<Session>(std::move(socket), *this);
      if (open > limits_.max_connections) {
        session->refuse();
      } else {
        session->start();
      }
    }
    accept();
  });
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
