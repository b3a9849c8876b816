#include "queues/receive_waiters.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "testing/store_fixture.h"

namespace drover::queues {
namespace {

using namespace std::chrono_literals;

class ReceiveWaitersTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "w.db"));
    ASSERT_TRUE(store_);
    waiters_ = std::make_unique<ReceiveWaiters>(*store_);
  }
  void TearDown() override { waiters_.reset(); }
  // A committed change naming `topic`, as a send makes.
  void Change(const std::string& topic) {
    ASSERT_TRUE(store::WriteSync(*store_, [&](store::Tx& tx) -> Status {
                  DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
                  return tx.Notify(topic);
                }).ok());
  }
  static ReceiveWaiters::Time In(std::chrono::milliseconds d) {
    return std::chrono::steady_clock::now() + d;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ReceiveWaiters> waiters_;
};
DROVER_ON_ALL_BACKENDS(ReceiveWaitersTest);

TEST_P(ReceiveWaitersTest, EachChangeWakesOneReceiverTheLongestWaitingFirst) {
  const std::string topic = "queue/t/jobs";
  std::atomic<int> woke[3] = {0, 0, 0};
  uint64_t v = waiters_->Version(topic);
  for (int i = 0; i < 3; ++i) {
    ASSERT_NE(waiters_->Park(topic, v, In(60s), [&, i] { woke[i]++; }), 0u);
  }
  Change("queue/t/other");  // another queue's change wakes nobody here
  Change(topic);
  ASSERT_TRUE(testing::WaitFor([&] { return woke[0] == 1; }));
  EXPECT_EQ(waiters_->parked(), 2u);
  EXPECT_EQ(woke[1] + woke[2], 0) << "one per change";
  waiters_->WakeOne(topic);  // a receiver that took a full batch passes it on
  ASSERT_TRUE(testing::WaitFor([&] { return woke[1] == 1; }));
  EXPECT_EQ(woke[2], 0);
  waiters_->Shutdown();
  ASSERT_TRUE(testing::WaitFor([&] { return woke[2] == 1; })) << "shutdown wakes the rest";
  EXPECT_EQ(woke[0] + woke[1] + woke[2], 3) << "each exactly once";
}

TEST_P(ReceiveWaitersTest, AChangeBetweenTheReceiveAndTheParkIsNotMissed) {
  const std::string topic = "queue/t/jobs";
  uint64_t v = waiters_->Version(topic);  // read before the (empty) receive
  Change(topic);                          // a send commits meanwhile
  ASSERT_TRUE(testing::WaitFor([&] { return waiters_->Version(topic) != v; }));
  bool woke = false;
  EXPECT_EQ(waiters_->Park(topic, v, In(60s), [&] { woke = true; }), 0u);
  EXPECT_TRUE(woke) << "woken at once: look again";
}

TEST_P(ReceiveWaitersTest, DeadlinesAndCancelWakeExactlyOnce) {
  const std::string topic = "queue/t/jobs";
  std::atomic<int> timed{0}, cancelled{0};
  auto start = std::chrono::steady_clock::now();
  waiters_->Park(topic, waiters_->Version(topic), In(300ms), [&] { timed++; });
  uint64_t t = waiters_->Park(topic, waiters_->Version(topic), In(60s), [&] { cancelled++; });
  waiters_->Cancel(t);
  ASSERT_TRUE(testing::WaitFor([&] { return cancelled == 1; }));
  ASSERT_TRUE(testing::WaitFor([&] { return timed == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  waiters_->Cancel(t);  // again: nothing
  Change(topic);
  waiters_->Shutdown();
  EXPECT_EQ(timed.load(), 1);
  EXPECT_EQ(cancelled.load(), 1);
}

}  // namespace
}  // namespace drover::queues
