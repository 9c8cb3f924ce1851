// How a daemon on PostgreSQL hears at once of a suppression another daemon (its webhook, the API,
// a bounce) or bulkmailctl made: LISTEN on the store's channel (pg::Listener), its socket waited
// on in the daemon's event loop. A notification makes the store worker read the event log now
// (StoreWorker::poke_watch), so an opt-out taken anywhere stops every daemon's next delivery to
// that person within milliseconds rather than the next poll.
//
// While the LISTEN connection is down, the worker polls the event log at its usual interval
// (kApplyInterval); once it is up, only every second, as a fallback. Connecting and reconnecting
// block, so they run on a thread of their own, with a backoff while the server is away; the log is
// read again after every (re)connect, since notifications sent meanwhile are lost.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "store/postgres/pg_listener.h"
#include "store/store_worker.h"

namespace bulkmail {

class SuppressionListener {
 public:
  SuppressionListener(boost::asio::io_context& io, std::string conninfo, StoreWorker& worker);
  ~SuppressionListener();  // stop()

  // Connects in the background, then listens on the loop.
  void start();
  // On the loop: stops listening and connecting (waits for a connect under way to end).
  void stop();

 private:
  void connect(std::chrono::milliseconds delay);           // starts the connecting thread
  void connected(std::shared_ptr<pg::Listener> listener);  // on the loop
  void arm();
  void lost(const std::string& why);  // on the loop

  boost::asio::io_context& io_;
  const std::string conninfo_;
  StoreWorker& worker_;
  std::shared_ptr<pg::Listener> listener_;  // the loop's, while connected
  // Waits on the listener's socket; the socket is libpq's, released (never closed) here.
  std::optional<boost::asio::posix::stream_descriptor> socket_;
  std::thread connecting_;
  std::mutex mu_;
  std::condition_variable stop_;
  bool stopping_ = false;
};

}  // namespace bulkmail
