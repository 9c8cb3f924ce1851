// Which message each sender last began to deliver: one 8-byte slot per sender in
// `<database>-started`, written with one pwrite(2) just before the relay gets the message (no
// fsync: like the outcome journal, it survives the death of the process, which is what it is
// for). After a crash, the messages still leased fall in two kinds: those named here may have
// reached the relay (a possible duplicate, their attempt spent), the rest were only buffered and
// are queued again as if never claimed. So a kill -9 names at most one possible duplicate per
// connection, not every message the dead daemon had claimed.
//
// SQLite only, beside the outcome journal: one daemon per database file (instance_lock.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "store/store.h"

namespace bulkmail {

class StartedDeliveries {
 public:
  // Reads what the last daemon left in `<database>-started` (nothing if there is no file), then
  // starts the file afresh with `senders` empty slots.
  static Result<std::unique_ptr<StartedDeliveries>> open(const std::filesystem::path& database,
                                                         int senders);
  StartedDeliveries(const StartedDeliveries&) = delete;
  StartedDeliveries& operator=(const StartedDeliveries&) = delete;

  // The messages the last daemon's senders had begun to deliver, for Store::recover_leases;
  // nullopt when that is not known (no file: a first start, or a write failed), and every lease
  // must then be taken for a possible duplicate.
  const std::optional<std::vector<MessageId>>& left_by_last_daemon() const { return left_; }
  // Sender `sender` is about to hand message `id` to the relay. Thread-safe across senders (each
  // writes its own slot). If the write fails, the file is removed, so that a crash from then on
  // counts every lease as a possible duplicate rather than trust a slot that may be stale.
  void mark(int sender, MessageId id);

  std::filesystem::path path() const { return path_; }

 private:
  StartedDeliveries(std::filesystem::path path, UniqueFd fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}
  std::filesystem::path path_;
  UniqueFd fd_;
  std::optional<std::vector<MessageId>> left_;
  std::atomic<bool> failed_{false};
};

}  // namespace bulkmail
