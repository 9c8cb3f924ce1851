#include "store/suppression_watch.h"

#include <algorithm>

namespace bulkmail {

void SuppressionWatch::add(const Suppression& s, Clock::time_point now, bool pending) {
  std::lock_guard lock(mu_);
  forget_old();
  auto& entries = by_address_[s.address];
  auto same = std::find_if(entries.begin(), entries.end(),
                           [&](const Entry& e) { return e.suppression.category == s.category; });
  if (same != entries.end()) {
    *same = {s, now, pending};
  } else if (!pending && count_ >= capacity_) {
    // An opt-out being recorded always finds room: nothing else stops its recipient's mail.
    if (entries.empty()) by_address_.erase(s.address);
    overflow_at_ = now;
    return;
  } else {
    entries.push_back({s, now, pending});
    ++count_;
  }
  added_.emplace_back(now, s.address);
}

void SuppressionWatch::lift(const std::string& address, const std::string& category) {
  std::lock_guard lock(mu_);
  auto it = by_address_.find(address);
  if (it == by_address_.end()) return;
  count_ -=
      std::erase_if(it->second, [&](const Entry& e) { return e.suppression.category == category; });
  if (it->second.empty()) by_address_.erase(it);
}

SuppressionWatch::Look SuppressionWatch::find(const std::string& address,
                                              const std::string& category) const {
  std::lock_guard lock(mu_);
  return find_locked(address, category);
}

SuppressionWatch::Look SuppressionWatch::find_locked(const std::string& address,
                                                     const std::string& category) const {
  auto it = by_address_.find(address);
  if (it != by_address_.end()) {
    const Entry* found = nullptr;
    for (const Entry& e : it->second) {
      if (e.suppression.category.empty()) return {true, e.suppression};
      if (e.suppression.category == category) found = &e;
    }
    if (found) return {true, found->suppression};
  }
  // Past capacity, what is not here may have been dropped: only the store can tell.
  if (overflow_at_) return {false, {}};
  return {};
}

std::size_t SuppressionWatch::size() const {
  std::lock_guard lock(mu_);
  return count_;
}

void SuppressionWatch::set_horizon(std::optional<Clock::time_point> oldest_claim) {
  horizon_.store(oldest_claim ? oldest_claim->time_since_epoch().count() : kNothingOutstanding,
                 std::memory_order_relaxed);
}

bool SuppressionWatch::watching() const {
  return horizon_.load(std::memory_order_relaxed) != kNothingOutstanding;
}

void SuppressionWatch::forget_old() {
  Clock::rep horizon = horizon_.load(std::memory_order_relaxed);
  auto before_horizon = [&](Clock::time_point seen) {
    return horizon == kNothingOutstanding || seen.time_since_epoch().count() < horizon;
  };
  if (overflow_at_ && before_horizon(*overflow_at_)) overflow_at_.reset();
  while (!added_.empty() && before_horizon(added_.front().first)) {
    auto it = by_address_.find(added_.front().second);
    added_.pop_front();
    if (it == by_address_.end()) continue;
    count_ -= std::erase_if(it->second,
                            [&](const Entry& e) { return !e.pending && before_horizon(e.seen); });
    if (it->second.empty()) by_address_.erase(it);
  }
}

SuppressionWatch::Look SuppressionWatch::look_and_hold(int sender, const std::string& address,
                                                       const std::string& category) {
  std::lock_guard lock(mu_);
  forget_old();
  Look look = find_locked(address, category);
  if (look.suppression) return look;
  auto i = static_cast<std::size_t>(sender);
  if (holds_.size() <= i) holds_.resize(i + 1);
  holds_[i] = {address, category, true};
  return look;
}

void SuppressionWatch::end_hold(int sender) {
  bool awaited = false;
  {
    std::lock_guard lock(mu_);
    auto i = static_cast<std::size_t>(sender);
    if (i >= holds_.size() || !holds_[i].active) return;
    holds_[i].active = false;
    auto it = std::find(awaited_.begin(), awaited_.end(), holds_[i].address);
    if (it != awaited_.end()) {
      awaited_.erase(it);
      awaited = true;
    }
  }
  if (awaited && on_hold_ended_) on_hold_ended_();
}

bool SuppressionWatch::held(const std::string& address, const std::string& category) {
  std::lock_guard lock(mu_);
  bool any = std::any_of(holds_.begin(), holds_.end(), [&](const Hold& h) {
    return h.active && h.address == address && (category.empty() || h.category == category);
  });
  if (any && std::find(awaited_.begin(), awaited_.end(), address) == awaited_.end())
    awaited_.push_back(address);
  return any;
}

}  // namespace bulkmail
