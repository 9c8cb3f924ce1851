// The connection budget's arithmetic. What the server does with it (503 and close, loopback
// clients past a full budget) runs against the real daemon in tests/webhook_test.py; IPv6 clients
// other than ::1 cannot be had on loopback, so their /64 grouping is checked here.
#include "web/http_server.h"

#include <doctest/doctest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

using namespace bulkmail;
using boost::asio::ip::make_address;
using Verdict = ConnectionBudget::Verdict;

namespace {

HttpLimits limits(std::size_t total, std::size_t per_client, std::size_t reserve) {
  HttpLimits l;
  l.max_connections = total;
  l.max_connections_per_client = per_client;
  l.loopback_reserve = reserve;
  return l;
}

}  // namespace

TEST_CASE("connections are admitted up to the per-client and the server-wide cap") {
  ConnectionBudget budget(limits(5, 2, 0));
  struct Step {
    const char* client;
    Verdict verdict;
  };
  const Step steps[] = {
      {"192.0.2.1", Verdict::admitted},
      {"192.0.2.1", Verdict::admitted},
      {"192.0.2.1", Verdict::client_full},         // its third
      {"::ffff:192.0.2.1", Verdict::client_full},  // the same client through a dual-stack socket
      {"192.0.2.2", Verdict::admitted},
      {"2001:db8:1:2::10", Verdict::admitted},
      {"2001:db8:1:2:ffff:1:2:3", Verdict::admitted},  // the same /64: its second
      {"2001:db8:1:2::99", Verdict::client_full},      // ... and its third
      {"2001:db8:1:3::10", Verdict::server_full},      // another /64, but five are open
      {"198.51.100.7", Verdict::server_full},
  };
  for (const Step& s : steps) {
    std::string client = s.client;
    CAPTURE(client);
    CHECK(budget.admit(make_address(s.client)) == s.verdict);
  }
  // A place given back is free again, for that client and for everyone.
  budget.release(make_address("::ffff:192.0.2.1"));
  CHECK(budget.admit(make_address("198.51.100.7")) == Verdict::admitted);
  CHECK(budget.admit(make_address("192.0.2.1")) == Verdict::server_full);
  budget.release(make_address("2001:db8:1:2::10"));
  CHECK(budget.admit(make_address("192.0.2.1")) == Verdict::admitted);
  CHECK(budget.admit(make_address("192.0.2.1")) == Verdict::client_full);
}

TEST_CASE("loopback clients have a reserve past a full budget, within their own cap") {
  ConnectionBudget budget(limits(2, 3, 2));
  CHECK(budget.admit(make_address("192.0.2.1")) == Verdict::admitted);
  CHECK(budget.admit(make_address("192.0.2.2")) == Verdict::admitted);
  CHECK(budget.admit(make_address("192.0.2.3")) == Verdict::server_full);
  CHECK(budget.admit(make_address("127.0.0.1")) == Verdict::admitted);
  CHECK(budget.admit(make_address("::1")) == Verdict::admitted);
  CHECK(budget.admit(make_address("127.0.0.2")) == Verdict::server_full);  // the reserve is spent
  CHECK(budget.admit(make_address("192.0.2.3")) == Verdict::server_full);
}

TEST_CASE(
    "behind a proxy on loopback holding every connection, a local health check still gets in") {
  // The README's nginx setup: max_connections_per_client equal to max_connections.
  ConnectionBudget budget(limits(4, 4, 2));
  for (int i = 0; i < 4; ++i) CHECK(budget.admit(make_address("127.0.0.1")) == Verdict::admitted);
  CHECK(budget.admit(make_address("127.0.0.1")) ==
        Verdict::admitted);  // /healthz, from the reserve
  CHECK(budget.admit(make_address("127.0.0.1")) == Verdict::admitted);
  CHECK(budget.admit(make_address("127.0.0.1")) == Verdict::client_full);  // the reserve is spent
  CHECK(budget.admit(make_address("192.0.2.1")) == Verdict::server_full);
}

TEST_CASE("releasing a client that holds nothing changes nothing") {
  ConnectionBudget budget(limits(1, 1, 0));
  budget.release(make_address("192.0.2.9"));
  CHECK(budget.admit(make_address("192.0.2.1")) == Verdict::admitted);
  CHECK(budget.admit(make_address("192.0.2.2")) == Verdict::server_full);
}

TEST_CASE(
    "an answer still queued on another loop when the daemon exits outlives nothing it needs") {
  // bulkmaild's order of declaration: the HTTP server first, then the main loop that /healthz
  // and /metrics answers are posted to. At exit the loop is destroyed first, with any closure
  // still queued on it, and such a closure holds an HTTP session whose destructor reaches into
  // the server: the server must still be there (AddressSanitizer's run of the unit tests checks).
  std::atomic<bool> asked{false};
  {
    boost::asio::io_context* loop = nullptr;
    HttpServer http(HttpLimits{}, [&](HttpRequest, Responder respond) {
      boost::asio::post(*loop, [respond = std::move(respond)] {
        HttpResponse res;
        respond(std::move(res));
      });
      asked = true;
    });
    boost::asio::io_context main_loop;  // never run: the answer stays queued
    loop = &main_loop;
    REQUIRE(http.listen("127.0.0.1", 0));
    http.start(1);
    boost::asio::io_context client_io;
    boost::asio::ip::tcp::socket client(client_io);
    client.connect({make_address("127.0.0.1"), http.port()});
    std::string request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    boost::asio::write(client, boost::asio::buffer(request));
    for (int i = 0; i < 500 && !asked; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(asked);
    http.stop();
  }  // main_loop, then http: the queued answer's session is released while the server lives
  CHECK(asked);
}
