#include "suppression_watch.h"

#include <algorithm>

namespace bulkmail {

void SuppressionWatch::add(const Suppression& s, Clock::time_point now) {
  std::lock_guard lock(mu_);
  forget_old(now);
  auto& entries = by_address_[s.address];
  auto same = std::find_if(entries.begin(), entries.end(),
                           [&](const Entry& e) { return e.suppression.category == s.category; });
  if (same != entries.end()) {
    *same = {s, now};
  } else if (size_.load(std::memory_order_relaxed) >= capacity_) {
    if (entries.empty()) by_address_.erase(s.address);
    overflow_until_ = now + keep_;
    overflowed_.store(true, std::memory_order_release);
    return;
  } else {
    entries.push_back({s, now});
    size_.fetch_add(1, std::memory_order_release);
  }
  added_.emplace_back(now, s.address);
}

void SuppressionWatch::lift(const std::string& address, const std::string& category) {
  std::lock_guard lock(mu_);
  auto it = by_address_.find(address);
  if (it == by_address_.end()) return;
  auto& entries = it->second;
  auto before = entries.size();
  std::erase_if(entries, [&](const Entry& e) { return e.suppression.category == category; });
  size_.fetch_sub(before - entries.size(), std::memory_order_release);
  if (entries.empty()) by_address_.erase(it);
}

SuppressionWatch::Look SuppressionWatch::find(const std::string& address,
                                              const std::string& category,
                                              Clock::time_point now) const {
  if (size_.load(std::memory_order_acquire) == 0 && !overflowed_.load(std::memory_order_acquire))
    return {};
  std::lock_guard lock(mu_);
  if (overflowed_.load(std::memory_order_relaxed) && now < overflow_until_) return {false, {}};
  auto it = by_address_.find(address);
  if (it == by_address_.end()) return {};
  const Entry* found = nullptr;
  for (const Entry& e : it->second) {
    if (e.suppression.category.empty()) return {true, e.suppression};
    if (e.suppression.category == category) found = &e;
  }
  if (found) return {true, found->suppression};
  return {};
}

std::size_t SuppressionWatch::size() const { return size_.load(std::memory_order_acquire); }

void SuppressionWatch::forget_old(Clock::time_point now) {
  if (overflowed_.load(std::memory_order_relaxed) && now >= overflow_until_)
    overflowed_.store(false, std::memory_order_release);
  while (!added_.empty() && now - added_.front().first > keep_) {
    auto it = by_address_.find(added_.front().second);
    added_.pop_front();
    if (it == by_address_.end()) continue;
    auto& entries = it->second;
    auto before = entries.size();
    std::erase_if(entries, [&](const Entry& e) { return now - e.seen > keep_; });
    size_.fetch_sub(before - entries.size(), std::memory_order_release);
    if (entries.empty()) by_address_.erase(it);
  }
}

}  // namespace bulkmail
