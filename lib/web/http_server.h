// The daemon's HTTP server: Boost.Beast on an io_context and threads of its own, so that a busy
// webhook never slows deliveries and slow deliveries never slow the webhook. It enforces the
// limits every request meets before any route sees it:
//   - request header at most 8 KiB (431), body at most 64 KiB (413);
//   - the whole request within the read timeout, so a client trickling one byte a second is cut
//     off with 408; an idle keep-alive connection (no request begun) is closed without a word
//     after the same time;
//   - connections within the ConnectionBudget below (more get 503 and are closed);
//   - a malformed request gets 400 and its connection is closed. Malformed includes what RFC 9112
//     calls ambiguous framing, which Beast lets through: a Transfer-Encoding whose last coding is
//     not chunked, one with Content-Length, Content-Length twice, Transfer-Encoding in HTTP/1.0;
//     and an HTTP/1.1 request without exactly one Host. A coding before chunked ("gzip, chunked")
//     gets 501. The body's bytes are never read as a next request;
//   - a route that has not answered within the answer timeout gets 503 for it (its answer, should
//     it come later, is dropped).
// Each of these answers is counted through the RefusalCounter (/metrics:
// bulkmail_http_refused_total); an idle connection closed, or a client that hangs up partway
// through a request, is not. A handler that throws gets 500, not counted here: the webhook
// answers its routes' failures itself and counts them by route.
// When accept() fails (out of file descriptors), the server waits a little before accepting
// again, logs once until accepting works again, and keeps serving the connections it has.
// TLS is for a reverse proxy in front (README: nginx).
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "web/http_refusal.h"
#include "web/webhook.h"

namespace bulkmail {

struct HttpLimits {
  std::size_t header_bytes = 8 * 1024;
  std::size_t body_bytes = 64 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds answer_timeout{10'000};
  // Open connections at most (webhook.max_connections). Each costs a file descriptor and a
  // little memory; too low and a burst of one-click POSTs waits for 503s to be retried.
  std::size_t max_connections = 512;
  // From one client address at most (webhook.max_connections_per_client), so that one client
  // holding connections half-open cannot take the whole budget. Too low hurts clients that share
  // an address: behind a reverse proxy, all of them.
  std::size_t max_connections_per_client = 64;
  // Loopback clients may go this far past max_connections, so that a local health check still
  // gets in while the budget is spent.
  std::size_t loopback_reserve = 8;
  // How long to wait before accepting again after accept() failed (out of file descriptors):
  // long enough not to spin on a listening socket that stays readable, short enough that a
  // freed descriptor is soon used.
  std::chrono::milliseconds accept_retry{100};
};

// Who may have one more connection: at most max_connections in all, loopback clients
// loopback_reserve more, and at most max_connections_per_client from one client address. An IPv4
// client is its address, an IPv6 client its /64 (one host usually has a whole /64 to pick
// from), an IPv4-mapped IPv6 address the IPv4 one. Thread-safe.
class ConnectionBudget {
 public:
  enum class Verdict { admitted, server_full, client_full };

  explicit ConnectionBudget(const HttpLimits& limits);

  // On `admitted` the connection holds a place until release(client) with the same address.
  Verdict admit(const boost::asio::ip::address& client);
  void release(const boost::asio::ip::address& client);

 private:
  std::size_t max_connections_;
  std::size_t per_client_;
  std::size_t loopback_reserve_;
  std::mutex mu_;
  std::size_t held_ = 0;                                       // guarded by mu_
  std::map<boost::asio::ip::address, std::size_t> by_client_;  // guarded by mu_
};

using HttpHandler = std::function<void(HttpRequest, Responder)>;
// Told of each answer the server gives on its own (HttpRefusal), on one of the server's threads.
using RefusalCounter = std::function<void(HttpRefusal)>;

class HttpServer {
 public:
  HttpServer(HttpLimits limits, HttpHandler handler, RefusalCounter refused = {});
  ~HttpServer();

  // Binds and listens. The error names the address ("cannot listen on 127.0.0.1:8025: ...").
  Result<void> listen(const std::string& host, std::uint16_t port);
  // Serves on `threads` threads of its own until stop().
  void start(int threads);
  // Stops accepting, closes every connection, joins the threads.
  void stop();

  std::uint16_t port() const { return port_; }

 private:
  class Session;
  void accept();
  void accept_failed(const boost::system::error_code& ec);
  void serve(boost::asio::ip::tcp::socket socket);
  void count(HttpRefusal r) const {
    if (refused_) refused_(r);
  }

  HttpLimits limits_;
  HttpHandler handler_;
  RefusalCounter refused_;
  // Before io_: sessions it destroys still give back their place.
  ConnectionBudget budget_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // The accept loop is one chain of handlers (an accept, or a wait after a failed one), so these
  // two are only ever touched by one thread at a time.
  boost::asio::steady_timer accept_retry_;
  bool accept_failing_ = false;
  std::uint16_t port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace bulkmail
