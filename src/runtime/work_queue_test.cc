#include "runtime/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "testing/fake_clock.h"
#include "testing/temp_dir.h"

namespace drover::runtime {
namespace {

using std::chrono::milliseconds;

TEST(WorkQueueTest, AKeyAddedOftenWhileWaitingIsHandledOnce) {
  std::atomic<int> handled{0};
  std::atomic<bool> go{false};
  WorkQueue q({"t", 1}, [&](const std::string& key) {
    if (key == "block") {
      while (!go) std::this_thread::yield();
    } else {
      ++handled;
    }
    return Outcome::Done();
  });
  q.Start();
  q.Add("block");  // holds the one worker while "k" is added ten times
  ASSERT_TRUE(testing::WaitFor([&] { return q.pending() == 0; }));
  for (int i = 0; i < 10; ++i) q.Add("k");
  EXPECT_EQ(q.pending(), 1u);
  go = true;
  ASSERT_TRUE(testing::WaitFor([&] { return handled == 1 && q.pending() == 0; }));
  q.Stop();
  EXPECT_EQ(handled, 1);
}

TEST(WorkQueueTest, AKeyIsNeverHandledTwiceAtOnceAndAnAddDuringHandlingRunsItAgain) {
  std::atomic<int> running{0}, max_running{0}, handled{0};
  std::atomic<bool> release{false};
  WorkQueue q({"t", 4}, [&](const std::string&) {
    int now = ++running;
    max_running = std::max(max_running.load(), now);
    while (handled == 0 && !release) std::this_thread::yield();
    --running;
    ++handled;
    return Outcome::Done();
  });
  q.Start();
  q.Add("k");
  ASSERT_TRUE(testing::WaitFor([&] { return running == 1; }));
  q.Add("k");  // while it is being handled: once more after
  q.Add("k");
  release = true;
  ASSERT_TRUE(testing::WaitFor([&] { return handled == 2 && q.pending() == 0; }));
  q.Stop();
  EXPECT_EQ(max_running, 1);
  EXPECT_EQ(handled, 2);
}

TEST(WorkQueueTest, AFailingKeyIsRetriedWithBackoffUntilItSucceeds) {
  std::atomic<int> calls{0};
  WorkQueue q({"t", 1, milliseconds(1), milliseconds(8)}, [&](const std::string&) {
    return ++calls < 5 ? Outcome::Failed(Status::Unavailable("not yet")) : Outcome::Done();
  });
  q.Start();
  q.Add("k");
  ASSERT_TRUE(testing::WaitFor([&] { return calls == 5 && q.pending() == 0; }));
  EXPECT_EQ(q.failures("k"), 0) << "a success forgets the failures";
  q.Stop();
}

TEST(WorkQueueTest, RequeueAfterHandlesTheKeyAgain) {
  std::atomic<int> calls{0};
  WorkQueue q({"t", 2}, [&](const std::string&) {
    ++calls;
    return Outcome::After(milliseconds(1));
  });
  q.Start();
  q.Add("tick");
  ASSERT_TRUE(testing::WaitFor([&] { return calls >= 3; }));
  q.Forget("tick");
  q.Stop();
}

TEST(WorkQueueTest, StopLetsAHandlerUnderWayFinish) {
  std::atomic<bool> started{false}, finished{false};
  WorkQueue q({"t", 1}, [&](const std::string&) {
    started = true;
    std::this_thread::sleep_for(milliseconds(50));
    finished = true;
    return Outcome::Done();
  });
  q.Start();
  q.Add("k");
  ASSERT_TRUE(testing::WaitFor([&] { return started.load(); }));
  q.Stop();
  EXPECT_TRUE(finished);
}

TEST(WorkQueueTest, AKeyAddedForLaterWaitsAndAnEarlierAddWins) {
  std::atomic<int> calls{0};
  WorkQueue q({"t", 1}, [&](const std::string&) {
    ++calls;
    return Outcome::Done();
  });
  q.Start();
  q.AddAfter("k", std::chrono::hours(1));
  EXPECT_EQ(q.pending(), 1u);
  EXPECT_EQ(calls, 0);
  q.Add("k");  // sooner: replaces the later time
  ASSERT_TRUE(testing::WaitFor([&] { return calls == 1 && q.pending() == 0; }));
  q.Stop();
}

// With a fake clock the retries come exactly when their backoff says: each call records the
// fake time it ran at, and the clock only moves when the test moves it.
TEST(WorkQueueTest, BackoffDoublesUpToItsMaximumOnTheClocksTime) {
  testing::FakeClock clock;
  std::mutex mu;
  std::vector<Clock::SteadyTime> at;
  WorkQueueOptions o{"t", 1, milliseconds(100), milliseconds(400), &clock};
  WorkQueue q(o, [&](const std::string&) {
    std::lock_guard lock(mu);
    at.push_back(clock.Steady());
    return at.size() < 5 ? Outcome::Failed(Status::Unavailable("not yet")) : Outcome::Done();
  });
  auto calls = [&] {
    std::lock_guard lock(mu);
    return at.size();
  };
  q.Start();
  auto t0 = clock.Steady();
  q.Add("k");
  size_t done = 0;
  for (auto step : {100, 200, 400, 400}) {
    // Call `done + 1` ran and its retry is scheduled (the key is pending again): move on.
    ++done;
    ASSERT_TRUE(testing::WaitFor([&] { return calls() == done && q.pending() == 1; }));
    clock.Advance(milliseconds(step));
  }
  ASSERT_TRUE(testing::WaitFor([&] { return calls() == 5 && q.pending() == 0; }));
  q.Stop();
  std::vector<int64_t> offsets;
  for (auto t : at) {
    offsets.push_back(std::chrono::duration_cast<milliseconds>(t - t0).count());
  }
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 100, 300, 700, 1100}));
}

TEST(WorkQueueTest, RequeueAfterWaitsForTheClock) {
  testing::FakeClock clock;
  std::atomic<int> calls{0};
  WorkQueueOptions o{"t", 1, milliseconds(100), milliseconds(400), &clock};
  WorkQueue q(o, [&](const std::string&) {
    ++calls;
    return Outcome::After(std::chrono::hours(1));
  });
  q.Start();
  q.Add("tick");
  ASSERT_TRUE(testing::WaitFor([&] { return calls == 1 && q.pending() == 1; }));
  clock.Advance(std::chrono::minutes(59));
  clock.Advance(std::chrono::minutes(1));
  ASSERT_TRUE(testing::WaitFor([&] { return calls == 2 && q.pending() == 1; }));
  q.Stop();
}

}  // namespace
}  // namespace drover::runtime
