#include "env/heartbeats.h"

#include <gtest/gtest.h>

#include "testing/store_fixture.h"

namespace drover::env {
namespace {

using namespace std::chrono_literals;

class HeartbeatBufferTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_));
    ASSERT_TRUE(store_);
    for (const char* id : {"i-1", "i-2"}) {
      ASSERT_TRUE(store::WriteSync(*store_, [&](store::Tx& tx) {
                    return tx
                        .Exec(
                            "INSERT INTO instances (id, tenant, environment, state, hostname,"
                            " address, provider_id, facts, agent_version, skipped_runs,"
                            " last_heartbeat, restarts, last_run_seq, created_at, updated_at)"
                            " VALUES (?, 'default', 'web', 'running', '', '', '', '{}', '', 0,"
                            " 1000, 0, 0, 0, 0)",
                            {std::string(id)})
                        .status();
                  }).ok());
    }
  }
  std::optional<int64_t> Stored(const std::string& id) {
    std::optional<int64_t> v;
    EXPECT_TRUE(store_
                    ->Read([&](store::Tx& tx) {
                      return tx.Query("SELECT last_heartbeat FROM instances WHERE id = ?", {id},
                                      [&](const store::Row& r) { v = r.Int(0); });
                    })
                    .ok());
    return v;
  }
  Status SetState(const std::string& id, const std::string& state) {
    return store::WriteSync(*store_, [&](store::Tx& tx) {
      return tx.Exec("UPDATE instances SET state = ? WHERE id = ?", {state, id}).status();
    });
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
};
DROVER_ON_ALL_BACKENDS(HeartbeatBufferTest);

TEST_P(HeartbeatBufferTest, BufferedTimesAreSeenAtOnceAndWrittenByAFlush) {
  HeartbeatBuffer b(*store_, SystemClock::Get(), 1h);  // no flush by the thread in this test
  b.Record("i-1", "fp");
  auto seen = b.Overlay("i-1", Stored("i-1"));
  ASSERT_TRUE(seen.has_value());
  EXPECT_GT(*seen, 1000);
  EXPECT_EQ(Stored("i-1"), 1000) << "not written before the flush";
  EXPECT_EQ(b.Overlay("i-2", 1000), 1000);
  ASSERT_TRUE(b.Flush().ok());
  ASSERT_TRUE(Stored("i-1").has_value());
  EXPECT_GT(*Stored("i-1"), 1000);
  EXPECT_EQ(Stored("i-2"), 1000);
}

TEST_P(HeartbeatBufferTest, TheSameHeartbeatIsQuietUntilTheInstanceLeavesRunning) {
  HeartbeatBuffer b(*store_, SystemClock::Get(), 1h);
  EXPECT_FALSE(b.Quiet("i-1", "fp")) << "nothing known yet";
  b.Record("i-1", "fp");
  EXPECT_TRUE(b.Quiet("i-1", "fp"));
  EXPECT_FALSE(b.Quiet("i-1", "other")) << "news takes the full path";
  // The controller marks it unhealthy (on another server: no Forget here): the flush finds it
  // not running, writes nothing and forgets it, so its next heartbeat reads the store.
  ASSERT_TRUE(SetState("i-1", "unhealthy").ok());
  ASSERT_TRUE(b.Flush().ok());
  EXPECT_EQ(Stored("i-1"), 1000);
  EXPECT_FALSE(b.Quiet("i-1", "fp"));
  b.Record("i-2", "fp");
  b.Forget("i-2");
  EXPECT_FALSE(b.Quiet("i-2", "fp"));
}

TEST_P(HeartbeatBufferTest, StopWritesWhatIsBufferedAndTheThreadFlushesByItself) {
  {
    HeartbeatBuffer b(*store_, SystemClock::Get(), 1h);
    b.Record("i-1", "fp");
  }  // destroyed: Stop flushes
  EXPECT_GT(*Stored("i-1"), 1000);
  HeartbeatBuffer fast(*store_, SystemClock::Get(), 10ms);
  fast.Record("i-2", "fp");
  EXPECT_TRUE(testing::WaitFor([&] { return Stored("i-2") > 1000; }, 10000));
}

}  // namespace
}  // namespace drover::env
