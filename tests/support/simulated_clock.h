// Simulated monotonic time for components that take a TimeSource (the dispatcher): the test moves
// the clock, and waits on it end as soon as it passes their deadline, so a test of a one-second
// back-off takes milliseconds and asserts on simulated durations instead of real ones.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "base/clock.h"

namespace bulkmail::test {

class SimulatedClock final : public TimeSource {
 public:
  // Monotonic time only: the wall clock stays real, because the store a component writes to runs
  // on it (a message handed back "due now" in simulated wall time would not be due for the store).
  Micros now_micros() override { return now_.load(); }
  UnixMillis now_millis() override { return bulkmail::now_millis(); }
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  Micros deadline) override {
    if (now_.load() >= deadline) return;
    {
      std::lock_guard g(mu_);
      waiting_.insert(&cv);
    }
    // advance() notifies; the short real bound covers an advance between the check above and the
    // wait (the caller re-checks its deadline in any case).
    cv.wait_for(lock, std::chrono::milliseconds(5));
    std::lock_guard g(mu_);
    waiting_.erase(waiting_.find(&cv));
  }

  void advance(std::chrono::microseconds by) {
    now_ += by.count();
    std::lock_guard g(mu_);
    for (auto* cv : waiting_) cv->notify_all();
  }

 private:
  std::atomic<Micros> now_{1'000'000};
  std::mutex mu_;
  std::multiset<std::condition_variable*> waiting_;
};

// Moves a SimulatedClock forward by `step` every `every` of real time, from construction until
// destruction: for tests whose threads wait on the clock while the test waits on them.
class ClockDriver {
 public:
  ClockDriver(SimulatedClock& clock, std::chrono::microseconds step = std::chrono::milliseconds(10),
              std::chrono::microseconds every = std::chrono::microseconds(200))
      : thread_([this, &clock, step, every] {
          while (!stop_) {
            clock.advance(step);
            std::this_thread::sleep_for(every);
          }
        }) {}
  ~ClockDriver() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace bulkmail::test
