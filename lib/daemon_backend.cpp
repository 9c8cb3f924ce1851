#include "daemon_backend.h"

#include <boost/asio/post.hpp>

namespace bulkmail {

void DaemonBackend::opt_out(Suppression s, std::function<void(bool)> done) {
  writer_.opt_out(std::move(s), std::move(done));
}

void DaemonBackend::write(std::function<void(Store&)> fn) { writer_.run(std::move(fn)); }

void DaemonBackend::read(std::function<void(Store&)> fn) { reader_.run(std::move(fn)); }

void DaemonBackend::dispatch_stats(std::function<void(DispatchStats)> done) {
  boost::asio::post(loop_, [this, done = std::move(done)] { done(dispatcher_.stats()); });
}

}  // namespace bulkmail
