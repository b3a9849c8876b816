#pragma once
// A clock that moves only when the test says: Advance() moves both its wall and its monotonic
// time; Set() puts the wall clock anywhere (calendars, time zones). Code that waits through
// Clock::WaitUntil wakes when the fake time passes its deadline (it checks every millisecond of
// real time, so nothing is lost between a check and a wait). Thread-safe.
#include <chrono>
#include <mutex>

#include "common/clock.h"

namespace drover::testing {

class FakeClock final : public Clock {
 public:
  // Starts at 2026-12-01T00:00:00Z, far from any epoch edge.
  FakeClock();
  TimePoint Now() const override;
  SteadyTime Steady() const override;
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& pred) const override;

  void Advance(std::chrono::milliseconds d);
  void Set(TimePoint now);

 private:
  mutable std::mutex mu_;
  TimePoint now_;      // GUARDED_BY(mu_)
  SteadyTime steady_;  // GUARDED_BY(mu_)
};

}  // namespace drover::testing
