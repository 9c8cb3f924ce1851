// The daemon's HTTP server: Boost.Beast on an io_context and threads of its own, so that a busy
// webhook never slows deliveries and slow deliveries never slow the webhook. It enforces the
// limits every request meets before any route sees it:
//   - request header at most 8 KiB (431), body at most 64 KiB (413);
//   - the whole request within the read timeout, so a client trickling one byte a second is cut
//     off; an idle keep-alive connection is closed after the same time;
//   - at most `max_connections` open connections (more get 503 and are closed);
//   - a malformed request gets 400 and its connection is closed;
//   - a route that has not answered within the answer timeout gets 503 for it.
// TLS is for a reverse proxy in front (README: nginx).
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "result.h"
#include "webhook.h"

namespace bulkmail {

struct HttpLimits {
  std::size_t header_bytes = 8 * 1024;
  std::size_t body_bytes = 64 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds answer_timeout{10'000};
  std::size_t max_connections = 512;
};

using HttpHandler = std::function<void(HttpRequest, Responder)>;

class HttpServer {
 public:
  HttpServer(HttpLimits limits, HttpHandler handler);
  ~HttpServer();

  // Binds and listens. The error names the address ("cannot listen on 127.0.0.1:8025: ...").
  Result<bool> listen(const std::string& host, std::uint16_t port);
  // Serves on `threads` threads of its own until stop().
  void start(int threads);
  // Stops accepting, closes every connection, joins the threads.
  void stop();

  std::uint16_t port() const { return port_; }
  std::size_t open_connections() const { return open_.load(); }

 private:
  class Session;
  void accept();

  HttpLimits limits_;
  HttpHandler handler_;
  std::atomic<std::size_t> open_{0};  // before io_: sessions it destroys still count down
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace bulkmail
