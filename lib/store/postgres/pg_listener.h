// A PostgreSQL connection of its own that LISTENs on one channel, for a daemon's event loop: how
// an opt-out taken by one daemon (or bulkmailctl) reaches every other daemon at once. The store
// NOTIFYs pgsql::kSuppressionChannel when a suppression is added or lifted, at commit; a daemon
// polls socket() for reading and, when it turns readable, calls take_notifications().
//
// A notification only says "look at the event log now" (Store::suppression_changes from the last
// event seen); its payload (the event id) is a hint, never the change itself. The log stays the
// truth because notifications can be lost: those sent while this connection is down never arrive,
// and PostgreSQL folds identical ones sent in one transaction. So:
//  - LISTEN comes before the look: make the Listener, then read the log, then wait on socket().
//  - After reconnect() the caller must read the log again, notification or not: whatever was
//    sent between the loss and the new LISTEN is gone.
//  - A caller that cannot reconnect yet falls back to polling the log on a timer.
//
// The constructor and reconnect() block for a connection and one round trip (LISTEN), so call
// them off the loop or accept the wait; socket() and take_notifications() never block. Failures
// throw pg::Error, as pg::Connection's do; the connection string is never in a message.
#pragma once

#include <string>
#include <vector>

#include "store/postgres/pg_connection.h"

namespace bulkmail::pg {

class Listener {
 public:
  // Connects with `conninfo` (what pg::Connection takes) and LISTENs on `channel`, quoted as an
  // identifier: the name is exact, case and all, as pg_notify() takes it. Throws pg::Error when
  // the server cannot be reached (connection_lost()) or refuses the LISTEN.
  Listener(const std::string& conninfo, std::string channel);

  // The connection's socket, to wait on for reading; -1 while the connection is lost. It may
  // change on reconnect(): register it with the loop again after one.
  int socket() const { return c_.socket(); }

  // The payloads of the notifications that arrived, oldest first; empty when none did (a wake-up
  // for something else, or only part of a message). Reads until the socket would block, so it is
  // not readable afterwards unless more came (or a flood outlasted a bound of reads: then it still
  // is, and the loop wakes again). Throws pg::Error with connection_lost() when the connection is
  // gone (the server ended the session, a network cut): reconnect(). Notifications read in the
  // same call go with it; the look at the log after reconnect() covers them.
  std::vector<std::string> take_notifications();

  // Connects again (blocking) and LISTENs again. Throws pg::Error (connection_lost()) while the
  // server is still unreachable: try again after a backoff. Notifications sent while the
  // connection was lost are not delivered: read the event log after this returns.
  void reconnect();

  // The server process behind the connection (pg_backend_pid), for logs and tests.
  int backend_pid() const { return c_.backend_pid(); }
  const std::string& channel() const { return channel_; }

 private:
  // LISTEN on channel_, on the connection as it is now.
  void listen();

  Connection c_;
  std::string channel_;
};

}  // namespace bulkmail::pg
