#include "store/postgres/pg_listener.h"

#include <poll.h>

#include <cerrno>
#include <memory>
#include <utility>

namespace bulkmail::pg {
namespace {

// Reads per take_notifications() at most: each takes what libpq's buffer holds (kilobytes of
// notifications), and a flood must not hold the daemon's loop.
constexpr int kMaxReads = 64;

struct FreeMem {
  void operator()(void* p) const { PQfreemem(p); }
};
using Notification = std::unique_ptr<PGnotify, FreeMem>;
using Escaped = std::unique_ptr<char, FreeMem>;

// 08006 (connection_failure), so that connection_lost() holds: libpq reports a closed socket
// without a SQLSTATE, and the server's last words (57P01 on pg_terminate_backend) go to the
// notice receiver, which pg::Connection keeps from stderr.
Error lost(PGconn* conn, const char* what) {
  std::string message = libpq_message(PQerrorMessage(conn));
  return Error("08006", std::string(what) + (message.empty() ? "" : ": " + message));
}

bool readable_now(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  int n;
  do n = ::poll(&p, 1, 0);
  while (n < 0 && errno == EINTR);
  return n > 0;
}

}  // namespace

Listener::Listener(const std::string& conninfo, std::string channel)
    : c_(conninfo), channel_(std::move(channel)) {
  listen();
}

void Listener::listen() {
  Escaped name(PQescapeIdentifier(c_.get(), channel_.data(), channel_.size()));
  if (!name) {
    throw Error("22021", "the LISTEN channel name cannot be quoted: " +
                             libpq_message(PQerrorMessage(c_.get())));
  }
  c_.exec("LISTEN " + std::string(name.get()));
}

std::vector<std::string> Listener::take_notifications() {
  PGconn* conn = c_.get();
  std::vector<std::string> out;
  // A read may stop short of what the socket holds (a full buffer, or the server's last message
  // read before its close): read on until it would block, so an edge-triggered loop misses
  // nothing and a loss shows now rather than at the next wake-up.
  for (int reads = 0; reads < kMaxReads; ++reads) {
    if (PQconsumeInput(conn) != 1 || PQstatus(conn) != CONNECTION_OK) {
      throw lost(conn, "the PostgreSQL connection for LISTEN was lost");
    }
    while (Notification n{PQnotifies(conn)}) out.emplace_back(n->extra);
    if (!readable_now(PQsocket(conn))) break;
  }
  return out;
}

void Listener::reconnect() {
  // Connection::reset keeps the connection's settings (and its notice receiver), so the
  // connection string is not held twice.
  c_.reset();
  if (PQstatus(c_.get()) != CONNECTION_OK) {
    throw lost(c_.get(), "cannot reconnect to PostgreSQL for LISTEN");
  }
  listen();
}

}  // namespace bulkmail::pg
