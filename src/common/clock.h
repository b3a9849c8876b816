#pragma once
// Time flows through Clock so tests can control it. Nothing else calls the system clock.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace drover {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Wall-clock time (for timestamps shown to users and stored).
  virtual TimePoint Now() const = 0;
  // Monotonic time (for durations, timeouts, rate limits).
  virtual SteadyTime Steady() const = 0;
  // Waits on `cv` (`lock` held on entry and on return) until `pred` holds or Steady() reaches
  // `deadline`; returns pred(). Loops and threads that wait for time wait through here, so a
  // test's fake clock (testing/fake_clock.h) decides when their time has come.
  virtual bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         SteadyTime deadline, const std::function<bool()>& pred) const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  SteadyTime Steady() const override { return std::chrono::steady_clock::now(); }
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, const std::function<bool()>& pred) const override {
    return cv.wait_until(lock, deadline, pred);
  }
  static SystemClock& Get();
};

// Milliseconds since the Unix epoch.
int64_t ToUnixMillis(TimePoint t);
TimePoint FromUnixMillis(int64_t ms);

// RFC 3339 UTC with millisecond precision: 2026-11-23T10:00:00.123Z
std::string FormatRfc3339(TimePoint t);

// Parses RFC 3339 with any offset ("2026-12-01T13:00:00Z", "...T14:00:00.5+01:00"); nullopt when
// `s` is not one.
// Years 1970-2199 (a TimePoint ends in 2262); nullopt for anything else.
std::optional<TimePoint> ParseRfc3339(std::string_view s);

}  // namespace drover
