// Suppressions that took effect after messages were claimed, for the senders' last look before
// each delivery. A claim already moves messages whose recipient is suppressed to `suppressed`;
// this holds what was added since: by this daemon (one-click, the API, a hard bounce) the moment
// it is committed, and by other processes (`bulkmailctl suppress`) within one poll of the event
// log (StoreWorker::kApplyInterval). Checking it costs a hash lookup instead of a database read
// per message. An entry is kept for `keep` (twice the lease: no message claimed before it was
// added can still be waiting by then) and dropped at once when the suppression is lifted.
//
// It holds at most `capacity` entries. Past that (a large suppression import while sending), it
// says it does not know until the surplus has aged out, and senders ask the database instead.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "suppression.h"

namespace bulkmail {

class SuppressionWatch {
 public:
  using Clock = std::chrono::steady_clock;

  struct Look {
    bool known = true;  // false: too many recent suppressions to hold; ask the store
    std::optional<Suppression> suppression;
  };

  SuppressionWatch(Clock::duration keep, std::size_t capacity = 20'000)
      : keep_(keep), capacity_(capacity) {}

  void add(const Suppression& s, Clock::time_point now = Clock::now());
  void lift(const std::string& address, const std::string& category);
  // Whether a recently added suppression stops mail of `category` to `address` (all-mail first).
  Look find(const std::string& address, const std::string& category,
            Clock::time_point now = Clock::now()) const;
  std::size_t size() const;

 private:
  struct Entry {
    Suppression suppression;
    Clock::time_point seen;
  };
  void forget_old(Clock::time_point now);  // with mu_ held

  Clock::duration keep_;
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<Entry>> by_address_;
  std::deque<std::pair<Clock::time_point, std::string>> added_;  // (seen, address), oldest first
  Clock::time_point overflow_until_{};
  // Let find() skip the lock in the usual case: nothing recent, no overflow.
  std::atomic<std::size_t> size_{0};
  std::atomic<bool> overflowed_{false};
};

}  // namespace bulkmail
