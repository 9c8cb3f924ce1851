// Which of each sender's outcomes are durable, and the sender waiting for one. The store worker
// (store_worker.h) tells it what it recorded and what it committed; a sender waits here until its
// last outcome is durable before its next delivery, so that a crash resends at most one message
// per connection.
//
// The rules, per sender (its outcomes numbered 1, 2, ... in the order it recorded them):
// - an outcome the journal holds is durable at once, and so is every earlier one;
// - an outcome the journal could not take is durable only once committed, and it holds its
//   sender's later outcomes back with it, journaled or not: a crash would lose it, and a sender
//   must not run ahead of an outcome that could be lost;
// - a commit makes its outcomes durable, with every earlier one of the same sender.
//
// Thread-safe. Senders are numbered 0 to senders-1; any other number is a programming error, and
// throws std::out_of_range at the call (as does the outcome number 0, which names no outcome).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>

namespace bulkmail {

// One sender's outcome: who recorded it, and its number among that sender's outcomes.
struct SenderTicket {
  int sender = 0;
  std::uint64_t seq = 0;  // 1 for the sender's first outcome, counting up
};

class Durability {
 public:
  explicit Durability(int senders);  // throws std::invalid_argument when negative
  Durability(const Durability&) = delete;
  Durability& operator=(const Durability&) = delete;

  int senders() const { return static_cast<int>(slots_.size()); }
  // Throws std::out_of_range unless `t` can name an outcome: a sender in range, a seq above 0.
  void check(const SenderTicket& t) const;

  // The outcome `t` was recorded; `journaled`: the journal holds it.
  void recorded(const SenderTicket& t, bool journaled);
  // A commit held these outcomes (any order, any senders).
  void committed(std::span<const SenderTicket> tickets);

  // Whether sender `sender`'s outcome `seq` is durable (wait() would return at once). Its
  // outcome 0 stands for "before the first": always durable.
  bool durable(int sender, std::uint64_t seq) const;
  // Blocks until durable(sender, seq), or until stop().
  void wait(int sender, std::uint64_t seq);
  // Wakes every waiter, now and later: nothing will be committed any more.
  void stop();

 private:
  struct Slot {
    std::uint64_t durable = 0;  // every outcome up to this one is durable
    // Its oldest outcome that only a commit makes durable and that is not committed yet, 0 when
    // none; no outcome from it on is durable before it is committed.
    std::uint64_t undurable_from = 0;
    std::uint64_t waiting_for = 0;  // the seq its sender waits for, 0 when not waiting
    std::condition_variable woken;  // its sender's wait may be over
  };
  // Throws std::out_of_range for a sender out of range; the slot's fields are read and written
  // only with mu_ held.
  Slot& slot(int sender);
  const Slot& slot(int sender) const;
  static void wake_if_due(Slot& s);

  mutable std::mutex mu_;
  std::deque<Slot> slots_;  // by sender; a deque: a condition variable cannot move
  bool stopped_ = false;
};

}  // namespace bulkmail
