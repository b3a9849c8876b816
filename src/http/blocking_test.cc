#include "http/blocking.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "testing/store_fixture.h"

namespace drover::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

class WaitersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::OpenTestStore(dir_);
    ASSERT_TRUE(store_);
    waiters_ = std::make_unique<Waiters>(*store_);
  }
  void Change(const char* topic) {
    ASSERT_TRUE(store::WriteSync(*store_, [topic](store::Tx& tx) -> Status {
                  auto i = tx.NextIndex();
                  if (!i.ok()) return i.status();
                  return tx.Notify(topic);
                }).ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Waiters> waiters_;
};

// Log lines commit without a change index: their readers wait by mark instead.
TEST_F(WaitersTest, AWaitByMarkEndsOnAChangeOfItsTopicThatTakesNoIndex) {
  auto notify_only = [&](const char* topic) {
    ASSERT_TRUE(store::WriteSync(*store_, [topic](store::Tx& tx) -> Status {
                  return tx.Notify(topic);
                }).ok());
  };
  int64_t mark = waiters_->Mark("logs");
  std::promise<void> ready;
  ASSERT_NE(waiters_->WaitAfterMark("logs", mark, minutes(10), [&] { ready.set_value(); }), 0u);
  int64_t index = store_->LastIndex();
  notify_only("other");
  Change("unrelated");  // an index change of another topic releases nothing
  auto f = ready.get_future();
  EXPECT_EQ(f.wait_for(milliseconds(100)), std::future_status::timeout);
  notify_only("logs");
  EXPECT_EQ(f.wait_for(seconds(60)), std::future_status::ready);
  EXPECT_GT(store_->LastIndex(), index);  // only by the unrelated change
  // A commit between taking the mark and parking is not missed: the wait ends at once.
  int64_t before = waiters_->Mark("logs");
  notify_only("logs");
  auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (waiters_->Mark("logs") == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  bool ran = false;
  EXPECT_EQ(waiters_->WaitAfterMark("logs", before, minutes(10), [&] { ran = true; }), 0u);
  EXPECT_TRUE(ran);
}

TEST_F(WaitersTest, AShortWaitParkedAfterALongOneEndsOnItsOwnDeadline) {
  std::promise<void> long_ready, short_ready;
  int64_t index = store_->LastIndex();
  waiters_->Wait("t", index, minutes(10), [&] { long_ready.set_value(); });
  waiters_->Wait("t", index, milliseconds(50), [&] { short_ready.set_value(); });
  // Far below the long wait's ten minutes, far above the short one's 50 ms on any machine.
  EXPECT_EQ(short_ready.get_future().wait_for(seconds(60)), std::future_status::ready);
  EXPECT_EQ(long_ready.get_future().wait_for(milliseconds(0)), std::future_status::timeout);
  waiters_->Shutdown();  // releases the long one
}

TEST_F(WaitersTest, CancellingTheEarliestWaitLeavesTheOthersOnTheirDeadlines) {
  std::promise<void> first, second;
  int64_t index = store_->LastIndex();
  uint64_t t1 = waiters_->Wait("t", index, minutes(5), [&] { first.set_value(); });
  ASSERT_NE(t1, 0u);
  waiters_->Wait("t", index, milliseconds(200), [&] { second.set_value(); });
  waiters_->Cancel(t1);  // runs its callback now
  EXPECT_EQ(first.get_future().wait_for(milliseconds(0)), std::future_status::ready);
  EXPECT_EQ(second.get_future().wait_for(seconds(60)), std::future_status::ready);
  EXPECT_EQ(waiters_->parked(), 0u);
  waiters_->Cancel(t1);  // already gone: nothing
}

// Released reads go to the executor (the store pool on PostgreSQL): a slow read there holds up
// no other released read. An executor that refuses leaves them to the waiters' thread.
TEST_F(WaitersTest, ReleasedReadsRunThroughTheExecutorOrHereWhenItRefuses) {
  std::atomic<int> submitted{0};
  std::atomic<bool> refuse{false};
  std::vector<std::thread> pool;
  std::mutex pool_mu;
  waiters_->SetExecutor([&](std::function<void()>& ready) {
    if (refuse) return false;
    ++submitted;
    std::lock_guard lock(pool_mu);
    pool.emplace_back(std::move(ready));  // runs it on a thread of its own
    return true;
  });
  std::promise<std::thread::id> on_pool, here;
  int64_t index = store_->LastIndex();
  waiters_->Wait("t", index, minutes(10), [&] { on_pool.set_value(std::this_thread::get_id()); });
  Change("t");
  auto pool_thread = on_pool.get_future();
  ASSERT_EQ(pool_thread.wait_for(seconds(60)), std::future_status::ready);
  EXPECT_EQ(submitted, 1);
  refuse = true;
  index = store_->LastIndex();
  waiters_->Wait("t", index, minutes(10), [&] { here.set_value(std::this_thread::get_id()); });
  Change("t");
  auto waiters_thread = here.get_future();
  ASSERT_EQ(waiters_thread.wait_for(seconds(60)), std::future_status::ready);
  EXPECT_EQ(submitted, 1) << "refused: run by the waiters' thread, not lost";
  EXPECT_NE(waiters_thread.get(), pool_thread.get());
  std::lock_guard lock(pool_mu);
  for (auto& t : pool) t.join();
}

TEST_F(WaitersTest, AChangeOfTheTopicReleasesOnlyItsWaits) {
  std::promise<void> mine, other;
  int64_t index = store_->LastIndex();
  waiters_->Wait("mine", index, minutes(10), [&] { mine.set_value(); });
  waiters_->Wait("other", index, minutes(10), [&] { other.set_value(); });
  Change("mine");
  EXPECT_EQ(mine.get_future().wait_for(seconds(60)), std::future_status::ready);
  EXPECT_EQ(other.get_future().wait_for(milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(waiters_->parked(), 1u);
  waiters_->Shutdown();
}

TEST_F(WaitersTest, AWaitForAnIndexAlreadyPassedRunsAtOnce) {
  Change("t");
  bool ran = false;
  EXPECT_EQ(waiters_->Wait("t", 0, minutes(10), [&] { ran = true; }), 0u);
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace drover::http
