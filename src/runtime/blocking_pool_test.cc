#include "runtime/blocking_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "testing/temp_dir.h"

namespace drover::runtime {
namespace {

using std::chrono::milliseconds;

TEST(BlockingPoolTest, RunsWorkOffTheCallersThread) {
  BlockingPool pool({.threads = 2});
  std::atomic<int> ran{0};
  std::thread::id caller = std::this_thread::get_id(), worker;
  ASSERT_TRUE(pool.TrySubmit([&](bool in_time) {
    worker = std::this_thread::get_id();
    ran += in_time;
  }));
  ASSERT_TRUE(testing::WaitFor([&] { return ran == 1; }));
  EXPECT_NE(worker, caller);
}

TEST(BlockingPoolTest, AFullQueueRefusesAtOnce) {
  BlockingPool pool({.threads = 1, .queue_limit = 2});
  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  ASSERT_TRUE(pool.TrySubmit([&](bool) {
    ++started;
    while (!release) std::this_thread::yield();
  }));
  ASSERT_TRUE(testing::WaitFor([&] { return started == 1; }));  // the one thread is taken
  EXPECT_TRUE(pool.TrySubmit([](bool) {}));
  EXPECT_TRUE(pool.TrySubmit([](bool) {}));
  EXPECT_FALSE(pool.TrySubmit([](bool) {})) << "a third waiting item is over the limit";
  EXPECT_EQ(pool.queued(), 2u);
  release = true;
  ASSERT_TRUE(testing::WaitFor([&] { return pool.queued() == 0 && pool.busy() == 0; }));
}

TEST(BlockingPoolTest, WorkThatWaitedPastTheTimeoutIsToldInsteadOfRun) {
  BlockingPool pool({.threads = 1, .queue_limit = 8, .queue_timeout = milliseconds(10)});
  std::atomic<int> late{0}, on_time{0};
  auto queued_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(pool.TrySubmit([&](bool) {
    // Holds the only thread until the next item has waited well past its timeout.
    while (std::chrono::steady_clock::now() < queued_at + milliseconds(100)) {
      std::this_thread::yield();
    }
  }));
  ASSERT_TRUE(pool.TrySubmit([&](bool in_time) { ++(in_time ? on_time : late); }));
  ASSERT_TRUE(testing::WaitFor([&] { return late + on_time == 1; }));
  EXPECT_EQ(late, 1);
}

}  // namespace
}  // namespace drover::runtime
