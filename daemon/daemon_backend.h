// The webhook's view of the running daemon: opt-outs and API changes go to the store's one
// writer (group commit), API queries to a reader connection of their own, and the dispatcher's
// numbers are copied on its event loop.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/io_context.hpp>

#include "delivery/dispatcher.h"
#include "store/store_worker.h"
#include "web/webhook.h"

namespace bulkmail {

class DaemonBackend : public WebhookBackend {
 public:
  DaemonBackend(StoreWorker& writer, StoreWorker& reader, boost::asio::io_context& loop,
                const Dispatcher& dispatcher)
      : writer_(writer), reader_(reader), loop_(loop), dispatcher_(dispatcher) {}

  void opt_out(Suppression s, std::function<void(bool)> done) override;
  void write(std::function<void(Store&)> fn) override;
  void read(std::function<void(Store&)> fn) override;
  void dispatch_stats(std::function<void(DispatchStats)> done) override;

 private:
  StoreWorker& writer_;
  StoreWorker& reader_;
  boost::asio::io_context& loop_;
  const Dispatcher& dispatcher_;
};

}  // namespace bulkmail
