#include "daemon_backend.h"

#include <boost/asio/post.hpp>

#include "base/log.h"

namespace bulkmail {

void DaemonBackend::opt_out(Suppression s, std::function<void(bool)> done) {
  writer_.opt_out(std::move(s), std::move(done));
}

// A refused task is dropped with its responder: the HTTP server answers 503 at its answer timeout.
void DaemonBackend::write(std::function<void(Store&)> fn) {
  if (!writer_.try_run(std::move(fn)))
    log_warning("webhook: the database is not keeping up; request dropped");
}

void DaemonBackend::read(std::function<void(Store&)> fn) {
  if (!reader_.try_run(std::move(fn)))
    log_warning("webhook: the database is not keeping up; request dropped");
}

void DaemonBackend::dispatch_stats(std::function<void(DispatchStats)> done) {
  boost::asio::post(loop_, [this, done = std::move(done)] { done(dispatcher_.stats()); });
}

}  // namespace bulkmail
