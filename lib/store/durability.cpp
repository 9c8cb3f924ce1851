#include "store/durability.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace bulkmail {

namespace {
std::size_t slot_count(int senders) {
  if (senders < 0)
    throw std::invalid_argument("durability: " + std::to_string(senders) + " senders");
  return static_cast<std::size_t>(senders);
}
}  // namespace

// Made in place: a slot, holding a condition variable, cannot be moved.
Durability::Durability(int senders) : slots_(slot_count(senders)) {}

const Durability::Slot& Durability::slot(int sender) const {
  if (sender < 0 || static_cast<std::size_t>(sender) >= slots_.size()) {
    throw std::out_of_range("durability: no sender " + std::to_string(sender) + " (there are " +
                            std::to_string(slots_.size()) + ")");
  }
  return slots_[static_cast<std::size_t>(sender)];
}

Durability::Slot& Durability::slot(int sender) {
  return const_cast<Slot&>(std::as_const(*this).slot(sender));
}

void Durability::check(const SenderTicket& t) const {
  slot(t.sender);  // the number of slots never changes: no lock needed
  if (t.seq == 0) {
    throw std::out_of_range("durability: outcome 0 of sender " + std::to_string(t.sender) +
                            " (they count from 1)");
  }
}

void Durability::wake_if_due(Slot& s) {
  if (s.waiting_for && s.durable >= s.waiting_for) {
    s.waiting_for = 0;  // woken once
    s.woken.notify_one();
  }
}

void Durability::recorded(const SenderTicket& t, bool journaled) {
  check(t);
  std::lock_guard lock(mu_);
  Slot& s = slot(t.sender);
  if (s.undurable_from) return;  // held back by an earlier outcome that only a commit saves
  if (journaled) {
    s.durable = std::max(s.durable, t.seq);
    wake_if_due(s);
  } else {
    s.undurable_from = t.seq;
  }
}

void Durability::committed(std::span<const SenderTicket> tickets) {
  std::lock_guard lock(mu_);
  for (const auto& t : tickets) {
    Slot& s = slot(t.sender);
    s.durable = std::max(s.durable, t.seq);
    if (s.undurable_from && s.undurable_from <= t.seq) s.undurable_from = 0;
    wake_if_due(s);
  }
}

bool Durability::durable(int sender, std::uint64_t seq) const {
  std::lock_guard lock(mu_);
  return slot(sender).durable >= seq;
}

void Durability::wait(int sender, std::uint64_t seq) {
  std::unique_lock lock(mu_);
  Slot& s = slot(sender);
  if (stopped_ || s.durable >= seq) return;
  s.waiting_for = seq;
  s.woken.wait(lock, [&] { return stopped_ || s.durable >= seq; });
  s.waiting_for = 0;
}

void Durability::stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  for (auto& s : slots_) s.woken.notify_all();
}

}  // namespace bulkmail
