#include "testing/fake_clock.h"

namespace drover::testing {

FakeClock::FakeClock()
    : now_(FromUnixMillis(1'796'083'200'000)),  // 2026-12-01T00:00:00Z
      steady_(std::chrono::hours(24)) {}

TimePoint FakeClock::Now() const {
  std::lock_guard lock(mu_);
  return now_;
}

Clock::SteadyTime FakeClock::Steady() const {
  std::lock_guard lock(mu_);
  return steady_;
}

bool FakeClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          SteadyTime deadline, const std::function<bool()>& pred) const {
  while (!pred()) {
    if (Steady() >= deadline) return pred();
    cv.wait_for(lock, std::chrono::milliseconds(1));  // a notify wakes it sooner
  }
  return true;
}

void FakeClock::Advance(std::chrono::milliseconds d) {
  std::lock_guard lock(mu_);
  now_ += d;
  steady_ += d;
}

void FakeClock::Set(TimePoint now) {
  std::lock_guard lock(mu_);
  now_ = now;
}

}  // namespace drover::testing
