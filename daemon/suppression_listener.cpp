#include "suppression_listener.h"

#include <boost/asio/post.hpp>

#include <algorithm>

#include "base/log.h"
#include "store/postgres/pg_sql.h"

namespace bulkmail {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr auto kFirstRetry = 500ms;
constexpr auto kMaxRetry = 10'000ms;
}  // namespace

SuppressionListener::SuppressionListener(asio::io_context& io, std::string conninfo,
                                         StoreWorker& worker)
    : io_(io), conninfo_(std::move(conninfo)), worker_(worker) {}

SuppressionListener::~SuppressionListener() { stop(); }

void SuppressionListener::start() { connect(0ms); }

void SuppressionListener::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (connecting_.joinable()) connecting_.join();
  if (socket_) {
    socket_->cancel();
    socket_->release();
    socket_.reset();
  }
  listener_.reset();
}

void SuppressionListener::connect(std::chrono::milliseconds delay) {
  if (connecting_.joinable()) connecting_.join();  // the last attempt ended
  connecting_ = std::thread([this, delay]() mutable {
    bool said = false;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        if (stop_.wait_for(lock, delay, [this] { return stopping_; })) return;
      }
      try {
        auto listener = std::make_shared<pg::Listener>(conninfo_, pgsql::kSuppressionChannel);
        asio::post(io_, [this, listener] { connected(listener); });
        return;
      } catch (const std::exception& e) {
        if (!said) {
          log_warning(std::string("LISTEN for suppressions: ") + e.what() +
                      "; reading the event log every " +
                      std::to_string(StoreWorker::kApplyInterval.count()) +
                      " ms until it connects");
          said = true;
        }
        delay = std::clamp(delay * 2, kFirstRetry, kMaxRetry);
      }
    }
  });
}

void SuppressionListener::connected(std::shared_ptr<pg::Listener> listener) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
  }
  listener_ = std::move(listener);
  socket_.emplace(io_, listener_->socket());
  worker_.set_changes_announced(true);
  worker_.poke_watch();  // what was announced before the LISTEN
  arm();
}

void SuppressionListener::arm() {
  socket_->async_wait(asio::posix::stream_descriptor::wait_read,
                      [this](const boost::system::error_code& ec) {
                        if (ec || !listener_) return;  // cancelled: stopping
                        try {
                          if (!listener_->take_notifications().empty()) worker_.poke_watch();
                        } catch (const std::exception& e) {
                          return lost(e.what());
                        }
                        arm();
                      });
}

void SuppressionListener::lost(const std::string& why) {
  log_warning("LISTEN for suppressions lost its connection (" + why +
              "); reading the event log every " +
              std::to_string(StoreWorker::kApplyInterval.count()) + " ms and reconnecting");
  worker_.set_changes_announced(false);
  socket_->release();
  socket_.reset();
  listener_.reset();
  connect(kFirstRetry);
}

}  // namespace bulkmail
