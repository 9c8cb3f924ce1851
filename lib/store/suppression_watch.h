// Suppressions that took effect after messages were claimed, for the senders' last look before
// each delivery, and the deliveries under way, so that an opt-out is answered only once no
// delivery to that person is still going out.
//
// A claim already moves messages whose recipient is suppressed to `suppressed`; this holds what
// was added since: by this daemon (one-click, the page, the API, a hard bounce) the moment it is
// committed, and by other processes (`bulkmailctl suppress`) within one poll of the event log
// (StoreWorker::kApplyInterval). Checking it costs a hash lookup instead of a database read per
// message.
//
// How long an entry is kept: until every message that may still be delivered was claimed after
// it was added (the horizon, set by the dispatcher from the claims it still holds messages of).
// A claim sees every suppression committed before it, so such an entry can no longer stop
// anything the claim did not. A message that waits an hour behind a slow domain or an open
// circuit breaker keeps the entries made since its claim for that hour. An opt-out entered before
// its commit (`pending`) is kept until it is entered again once committed.
//
// The last look and the delivery are tied together: a sender holds its recipient from the look
// until its outcome is recorded (look_and_hold, end_hold). An opt-out that finds a hold on its
// address (held) waits for it to end before it is committed and answered, so the person's 200
// comes after the message already on its way, never before it.
//
// It holds at most `capacity` entries besides pending opt-outs. Past that (a large suppression
// import while sending), it says it does not know until every message claimed before the surplus
// arrived is gone, and senders ask the database instead.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/suppression.h"

namespace bulkmail {

class SuppressionWatch {
 public:
  using Clock = std::chrono::steady_clock;

  struct Look {
    bool known = true;  // false: too many recent suppressions to hold; ask the store
    std::optional<Suppression> suppression;
  };

  explicit SuppressionWatch(std::size_t capacity = 20'000) : capacity_(capacity) {}

  // `pending`: an opt-out not yet committed; kept whatever the horizon, until added again.
  void add(const Suppression& s, Clock::time_point now = Clock::now(), bool pending = false);
  void lift(const std::string& address, const std::string& category);
  // Whether a recently added suppression stops mail of `category` to `address` (all-mail first).
  Look find(const std::string& address, const std::string& category) const;
  std::size_t size() const;

  // The claim time of the oldest message that may still be delivered (buffered, in flight, or
  // being claimed), or nullopt when there is none. Entries added before it are forgotten.
  void set_horizon(std::optional<Clock::time_point> oldest_claim);
  // Some claimed message may still be delivered: suppressions made elsewhere must keep arriving.
  bool watching() const;

  // The sender's last look: as find(), and unless the recipient is suppressed, `sender` holds
  // (address, category) until end_hold(sender). When the look is not known the hold is taken
  // all the same: the sender asks the store and ends the hold if that finds a suppression.
  Look look_and_hold(int sender, const std::string& address, const std::string& category);
  // The sender's outcome is recorded (or the delivery never started).
  void end_hold(int sender);
  // Whether a delivery that a suppression of (address, category) would stop is under way. If so,
  // `on_hold_ended` runs when a hold on that address ends.
  bool held(const std::string& address, const std::string& category);
  // Set once, before any sender runs; called without the watch's lock held.
  void on_hold_ended(std::function<void()> fn) { on_hold_ended_ = std::move(fn); }

 private:
  struct Entry {
    Suppression suppression;
    Clock::time_point seen;
    bool pending = false;
  };
  struct Hold {
    std::string address, category;
    bool active = false;
  };
  void forget_old();  // with mu_ held
  Look find_locked(const std::string& address, const std::string& category) const;

  std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<Entry>> by_address_;
  std::size_t count_ = 0;                                        // entries in by_address_
  std::deque<std::pair<Clock::time_point, std::string>> added_;  // (seen, address), oldest first
  std::optional<Clock::time_point> overflow_at_;                 // when an entry last found no room
  std::vector<Hold> holds_;                                      // by sender
  std::vector<std::string> awaited_;                             // addresses held() said are held
  std::function<void()> on_hold_ended_;
  // The horizon as steady-clock ticks; kNothingOutstanding when nothing may still be delivered.
  static constexpr Clock::rep kNothingOutstanding = std::numeric_limits<Clock::rep>::max();
  std::atomic<Clock::rep> horizon_{kNothingOutstanding};
};

}  // namespace bulkmail
