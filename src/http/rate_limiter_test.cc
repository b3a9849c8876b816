#include "http/rate_limiter.h"

#include <gtest/gtest.h>

namespace drover::http {
namespace {

using std::chrono::milliseconds;

TEST(RateLimiter, BurstThenRefill) {
  RateLimiter rl;
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rl.Take("k", 10, 3, t0).allowed) << i;
  auto denied = rl.Take("k", 10, 3, t0);
  EXPECT_FALSE(denied.allowed);
  EXPECT_NEAR(denied.retry_after_seconds, 0.1, 1e-9);
  EXPECT_FALSE(rl.Take("k", 10, 3, t0 + milliseconds(50)).allowed);
  EXPECT_TRUE(rl.Take("k", 10, 3, t0 + milliseconds(150)).allowed);
  EXPECT_TRUE(rl.Take("other", 10, 3, t0).allowed) << "buckets are per key";
}

TEST(RateLimiter, ZeroRateIsUnlimited) {
  RateLimiter rl;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.Take("k", 0, 0, t0).allowed);
}

TEST(RateLimiter, RefillIsCappedAtBurst) {
  RateLimiter rl;
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_TRUE(rl.Take("k", 1, 2, t0).allowed);
  auto later = t0 + std::chrono::hours(1);
  EXPECT_TRUE(rl.Take("k", 1, 2, later).allowed);
  EXPECT_TRUE(rl.Take("k", 1, 2, later).allowed);
  EXPECT_FALSE(rl.Take("k", 1, 2, later).allowed);
}

}  // namespace
}  // namespace drover::http
