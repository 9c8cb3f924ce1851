// The connection budget's arithmetic, and the server on its own threads with many clients at
// once (also run under ThreadSanitizer: thread_tests). What the server does with the budget (503
// and close, loopback clients past a full budget) runs against the real daemon in
// tests/webhook_test.py; IPv6 clients other than ::1 cannot be had on loopback, so their /64
// grouping is checked here.
#include "web/http_server.h"

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace bulkmail;
using boost::asio::ip::make_address;
using Admission = ConnectionBudget::Verdict;

namespace {

HttpLimits limits(std::size_t total, std::size_t per_client, std::size_t reserve) {
  HttpLimits l;
  l.max_connections = total;
  l.max_connections_per_client = per_client;
  l.loopback_reserve = reserve;
  return l;
}

// Answers handed to a thread of its own, as the webhook's opt-outs are answered from the store
// worker's thread once their transaction commits.
class AnsweringThread {
 public:
  AnsweringThread() : thread_([this] { run(); }) {}
  ~AnsweringThread() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mu_);
      work_.push_back(std::move(f));
    }
    cv_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !work_.empty(); });
      if (work_.empty()) return;
      auto f = std::move(work_.front());
      work_.pop_front();
      lock.unlock();
      f();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> work_;
  bool stop_ = false;
  std::thread thread_;
};

namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

// A client's connection to the server under test, blocking.
struct Client {
  boost::asio::io_context io;
  tcp::socket socket{io};
  boost::beast::flat_buffer buffer;
  explicit Client(std::uint16_t port) { socket.connect({make_address("127.0.0.1"), port}); }
  // From another loopback address (all of 127.0.0.0/8 is this host's): another client to the
  // connection budget.
  Client(std::uint16_t port, const char* from) {
    socket.open(tcp::v4());
    socket.bind({make_address(from), 0});
    socket.connect({make_address("127.0.0.1"), port});
  }
  void send(const std::string& bytes) { boost::asio::write(socket, boost::asio::buffer(bytes)); }
  HttpResponse read() {
    HttpResponse res;
    http::read(socket, buffer, res);
    return res;
  }
  // True once the server has closed the connection (after whatever it answered first).
  bool closed() {
    char bytes[512];
    boost::system::error_code ec;
    while (!ec) socket.read_some(boost::asio::buffer(bytes), ec);
    return ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
  }
};

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
}

}  // namespace

TEST_CASE("connections are admitted up to the per-client and the server-wide cap") {
  ConnectionBudget budget(limits(5, 2, 0));
  struct Step {
    const char* client;
    Admission verdict;
  };
  const Step steps[] = {
      {"192.0.2.1", Admission::admitted},
      {"192.0.2.1", Admission::admitted},
      {"192.0.2.1", Admission::client_full},         // its third
      {"::ffff:192.0.2.1", Admission::client_full},  // the same client through a dual-stack socket
      {"192.0.2.2", Admission::admitted},
      {"2001:db8:1:2::10", Admission::admitted},
      {"2001:db8:1:2:ffff:1:2:3", Admission::admitted},  // the same /64: its second
      {"2001:db8:1:2::99", Admission::client_full},      // ... and its third
      {"2001:db8:1:3::10", Admission::server_full},      // another /64, but five are open
      {"198.51.100.7", Admission::server_full},
  };
  for (const Step& s : steps) {
    std::string client = s.client;
    CAPTURE(client);
    CHECK(budget.admit(make_address(s.client)) == s.verdict);
  }
  // A place given back is free again, for that client and for everyone.
  budget.release(make_address("::ffff:192.0.2.1"));
  CHECK(budget.admit(make_address("198.51.100.7")) == Admission::admitted);
  CHECK(budget.admit(make_address("192.0.2.1")) == Admission::server_full);
  budget.release(make_address("2001:db8:1:2::10"));
  CHECK(budget.admit(make_address("192.0.2.1")) == Admission::admitted);
  CHECK(budget.admit(make_address("192.0.2.1")) == Admission::client_full);
}

TEST_CASE("loopback clients have a reserve past a full budget, within their own cap") {
  ConnectionBudget budget(limits(2, 3, 2));
  CHECK(budget.admit(make_address("192.0.2.1")) == Admission::admitted);
  CHECK(budget.admit(make_address("192.0.2.2")) == Admission::admitted);
  CHECK(budget.admit(make_address("192.0.2.3")) == Admission::server_full);
  CHECK(budget.admit(make_address("127.0.0.1")) == Admission::admitted);
  CHECK(budget.admit(make_address("::1")) == Admission::admitted);
  CHECK(budget.admit(make_address("127.0.0.2")) == Admission::server_full);  // the reserve is spent
  CHECK(budget.admit(make_address("192.0.2.3")) == Admission::server_full);
}

TEST_CASE(
    "behind a proxy on loopback holding every connection, a local health check still gets in") {
  // The README's nginx setup: max_connections_per_client equal to max_connections.
  ConnectionBudget budget(limits(4, 4, 2));
  for (int i = 0; i < 4; ++i) CHECK(budget.admit(make_address("127.0.0.1")) == Admission::admitted);
  CHECK(budget.admit(make_address("127.0.0.1")) ==
        Admission::admitted);  // /healthz, from the reserve
  CHECK(budget.admit(make_address("127.0.0.1")) == Admission::admitted);
  CHECK(budget.admit(make_address("127.0.0.1")) == Admission::client_full);  // the reserve is spent
  CHECK(budget.admit(make_address("192.0.2.1")) == Admission::server_full);
}

TEST_CASE("releasing a client that holds nothing changes nothing") {
  ConnectionBudget budget(limits(1, 1, 0));
  budget.release(make_address("192.0.2.9"));
  CHECK(budget.admit(make_address("192.0.2.1")) == Admission::admitted);
  CHECK(budget.admit(make_address("192.0.2.2")) == Admission::server_full);
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

TEST_CASE(
    "many clients at once, answers from three threads: each request answered once, in order") {
  // The server's two threads, a thread of answers (the store worker's part) and the clients'
  // threads all meet in the server's sessions: ThreadSanitizer's run of this test looks at each.
  auto answers = std::make_unique<AnsweringThread>();
  std::atomic<int> handled{0};
  HttpLimits l;
  l.read_timeout = std::chrono::milliseconds(60'000);  // the half request is still there at stop
  auto server = std::make_unique<HttpServer>(l, [&](HttpRequest req, Responder respond) {
    ++handled;
    std::string target(req.target());
    auto answer = [target, respond = std::move(respond)] {
      HttpResponse res{http::status::ok, 11};
      res.body() = target;
      res.prepare_payload();
      respond(std::move(res));
    };
    // Some answered at once on the server's thread, the rest from the other thread.
    if (target.back() % 2 == 0)
      answer();
    else
      answers->post(std::move(answer));
  });
  REQUIRE(server->listen("127.0.0.1", 0));
  server->start(2);
  const int kClients = 6, kRequests = 40;
  std::atomic<int> right{0}, wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      try {
        Client client(server->port());
        // Half of them one request at a time, the other half all pipelined in one write.
        std::string pipelined;
        for (int i = 0; i < kRequests; ++i) {
          std::string target = "/c" + std::to_string(c) + "/r" + std::to_string(i);
          if (c % 2 == 0) {
            client.send(get(target));
            (client.read().body() == target ? right : wrong)++;
          } else {
            pipelined += get(target);
          }
        }
        if (c % 2 == 0) return;
        client.send(pipelined);
        for (int i = 0; i < kRequests; ++i)
          (client.read().body() == "/c" + std::to_string(c) + "/r" + std::to_string(i) ? right
                                                                                       : wrong)++;
      } catch (const std::exception&) {
        ++wrong;  // a connection refused or cut: counted, not thrown across the thread
      }
    });
  }
  // Meanwhile: garbage (400 and closed), a client gone before its answer, and one that sends
  // half a request and is still there when the server stops.
  Client garbage(server->port());
  garbage.send("\x16\x03\x01 not http at all\r\n\r\n");
  CHECK(garbage.read().result() == http::status::bad_request);
  CHECK(garbage.closed());
  {
    Client gone(server->port());
    gone.send(get("/gone1"));
  }
  Client half(server->port());
  half.send("GET /half HTTP/1.1\r\nHost: loc");
  for (auto& t : clients) t.join();
  CHECK(right == kClients * kRequests);
  CHECK(wrong == 0);
  // Every full request reached the handler once: the clients', and the one whose client left.
  for (int i = 0; i < 100 && handled < kClients * kRequests + 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(handled == kClients * kRequests + 1);
  answers.reset();  // every answer given (to sessions the server still holds) before it stops
  server->stop();
  server.reset();  // the half request's connection is closed with the server's loop
  CHECK(half.closed());
}

namespace {

// What a server told its RefusalCounter, from its own threads. Every refusal is counted before its
// answer is written, so a client that has read the answer finds it counted.
struct Refusals {
  std::mutex mu;
  std::map<HttpRefusal, int> counted;
  RefusalCounter counter() {
    return [this](HttpRefusal why) {
      std::lock_guard lock(mu);
      ++counted[why];
    };
  }
  std::map<HttpRefusal, int> copy() {
    std::lock_guard lock(mu);
    return counted;
  }
};

HttpHandler answer_ok_throw_or_stay_silent() {
  return [](HttpRequest req, Responder respond) {
    if (req.target() == "/throws") throw std::runtime_error("a route's bug");
    if (req.target() == "/silent") return;  // never answers: the server's 503
    HttpResponse res{http::status::ok, 11};
    res.prepare_payload();
    respond(std::move(res));
  };
}

}  // namespace

TEST_CASE("each answer the server gives on its own is counted once, by its reason") {
  Refusals refusals;
  HttpLimits l;
  l.read_timeout = std::chrono::milliseconds(1000);
  l.answer_timeout = std::chrono::milliseconds(100);
  HttpServer server(l, answer_ok_throw_or_stay_silent(), refusals.counter());
  REQUIRE(server.listen("127.0.0.1", 0));
  server.start(2);

  struct Case {
    const char* what;
    std::string request;
    http::status status;
    HttpRefusal reason;
  };
  const Case cases[] = {
      {"garbage", "\x16\x03\x01 not http\r\n\r\n", http::status::bad_request,
       HttpRefusal::malformed},
      {"Content-Length twice",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
       http::status::bad_request, HttpRefusal::malformed},
      {"a coding before chunked",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       http::status::not_implemented, HttpRefusal::unsupported_coding},
      {"a 9 KB header",
       "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n",
       http::status::request_header_fields_too_large, HttpRefusal::header_too_large},
      {"a 70 KB body (refused on its Content-Length)",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n",
       http::status::payload_too_large, HttpRefusal::body_too_large},
      {"half a request", "GET / HTTP/1.1\r\nHost: x", http::status::request_timeout,
       HttpRefusal::read_timeout},
      {"a route that never answers", get("/silent"), http::status::service_unavailable,
       HttpRefusal::no_answer},
  };
  std::map<HttpRefusal, int> expected;
  for (const Case& c : cases) {
    std::string what = c.what;
    CAPTURE(what);
    Client client(server.port());
    client.send(c.request);
    CHECK(client.read().result() == c.status);
    CHECK(client.closed());
    ++expected[c.reason];
    CHECK(refusals.copy() == expected);
  }

  // No refusal: an answered request; a handler that throws (500, which the webhook's routes
  // answer and count themselves); an idle connection that just ends; a client that hangs up
  // partway through a request, or once it has asked to send a body.
  {
    Client fine(server.port());
    fine.send(get("/"));
    CHECK(fine.read().result() == http::status::ok);
    Client throws(server.port());
    throws.send(get("/throws"));
    CHECK(throws.read().result() == http::status::internal_server_error);
    CHECK(throws.closed());
  }
  {
    Client idle(server.port());
    CHECK(idle.closed());  // after the read timeout, without a word
  }
  for (const char* part : {"GET / HTTP/1.1\r\nHost: x",
                           "POST / HTTP/1.1\r\nHost: x\r\n"
                           "Content-Length: 10\r\n\r\nabc"}) {
    Client gone(server.port());
    gone.send(part);
    gone.socket.shutdown(tcp::socket::shutdown_send);
    CHECK(gone.closed());
  }
  {
    Client waiting(server.port());
    waiting.send(
        "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    http::response_parser<http::empty_body> interim;
    http::read_header(waiting.socket, waiting.buffer, interim);
    CHECK(interim.get().result() == http::status::continue_);
    waiting.socket.shutdown(tcp::socket::shutdown_send);
    CHECK(waiting.closed());
  }
  CHECK(refusals.copy() == expected);
  server.stop();
}

TEST_CASE("connections past the budget are counted as server-full or client-full") {
  // Two from one client at most, three in all, no loopback reserve; the default read timeout, so
  // the connections held stay open however slow the machine.
  Refusals refusals;
  HttpServer server(limits(3, 2, 0), answer_ok_throw_or_stay_silent(), refusals.counter());
  REQUIRE(server.listen("127.0.0.1", 0));
  server.start(2);
  Client first(server.port()), second(server.port()), other(server.port(), "127.0.0.2");
  for (Client* c : {&first, &second, &other}) {
    c->send(get("/"));
    CHECK(c->read().result() == http::status::ok);  // admitted and served, and still open
  }
  {
    Client third(server.port());
    CHECK(third.read().result() == http::status::service_unavailable);
    CHECK(third.closed());
  }
  CHECK(refusals.copy() == std::map<HttpRefusal, int>{{HttpRefusal::client_full, 1}});
  {
    Client newcomer(server.port(), "127.0.0.3");
    CHECK(newcomer.read().result() == http::status::service_unavailable);
    CHECK(newcomer.closed());
  }
  CHECK(refusals.copy() ==
        std::map<HttpRefusal, int>{{HttpRefusal::client_full, 1}, {HttpRefusal::server_full, 1}});
  server.stop();
}
