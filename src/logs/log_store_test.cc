#include "logs/log_store.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "testing/store_fixture.h"

namespace drover::logs {
namespace {

class LogStoreTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void Open(LogOptions o = {}) {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "logs.db"));
    ASSERT_TRUE(store_);
    logs_ = std::make_unique<LogStore>(*store_, registry_, o);
    logs_->Start();
  }
  void TearDown() override { logs_.reset(); }

  // Appends lines "<prefix>0".."<prefix>N-1" at times at_ms, at_ms+1, ... and waits for them.
  void Add(const std::string& tenant, const std::string& env, const std::string& inst, int n,
           const std::string& prefix, int64_t at_ms = 1000, const std::string& trace = "") {
    std::vector<LogLine> lines;
    for (int i = 0; i < n; ++i) {
      lines.push_back({at_ms + i, "run", prefix + std::to_string(i), trace});
    }
    ASSERT_TRUE(logs_->Append(tenant, env, inst, std::move(lines)));
    ASSERT_TRUE(logs_->Flush(std::chrono::seconds(30)));
  }

  std::vector<std::string> Lines(LogQuery q) {
    auto page = logs_->Read(q);
    EXPECT_TRUE(page.ok()) << page.status().message();
    std::vector<std::string> out;
    if (page.ok()) {
      for (const auto& l : page->lines) out.push_back(l.line);
    }
    return out;
  }

  testing::TempDir dir_;
  metrics::Registry registry_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<LogStore> logs_;
};
DROVER_ON_ALL_BACKENDS(LogStoreTest);

TEST_P(LogStoreTest, ReadsTheTailThenOnwardInOrderPerTenant) {
  Open();
  Add("t", "web", "i-1", 5, "a");
  Add("t", "db", "i-2", 3, "b");
  Add("other", "web", "i-9", 4, "secret");
  LogQuery q{.tenant = "t", .limit = 4};
  EXPECT_EQ(Lines(q), (std::vector<std::string>{"a4", "b0", "b1", "b2"}));
  q.environment = "web";
  EXPECT_EQ(Lines(q), (std::vector<std::string>{"a1", "a2", "a3", "a4"}));
  // From the tail on: only what comes after.
  auto page = logs_->Read(q);
  ASSERT_TRUE(page.ok() && page->next);
  Add("t", "web", "i-1", 2, "c");
  LogQuery after = q;
  after.after = page->next;
  EXPECT_EQ(Lines(after), (std::vector<std::string>{"c0", "c1"}));
  // Paging forward from the start.
  LogQuery first{.tenant = "t", .environment = "web", .after = Position{0, -1}, .limit = 3};
  auto p1 = logs_->Read(first);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->lines.size(), 3u);
  EXPECT_EQ(p1->lines[0].line, "a0");
  first.after = p1->next;
  EXPECT_EQ(Lines(first), (std::vector<std::string>{"a3", "a4", "c0"}));
  // Another tenant's lines never show.
  LogQuery other{.tenant = "other", .limit = 100};
  EXPECT_EQ(Lines(other).size(), 4u);
  LogQuery none{.tenant = "nobody", .limit = 100};
  EXPECT_TRUE(Lines(none).empty());
}

TEST_P(LogStoreTest, FiltersByInstanceTimeTraceAndPattern) {
  Open();
  Add("t", "web", "i-1", 10, "took ", 1000);
  Add("t", "web", "i-2", 10, "error ", 5000, std::string(31, 'a') + "b");
  LogQuery q{.tenant = "t", .environment = "web", .limit = 100};
  q.instance = "i-2";
  EXPECT_EQ(Lines(q).size(), 10u);
  q.instance = "";
  q.since_ms = 1005;
  q.until_ms = 5002;
  EXPECT_EQ(Lines(q), (std::vector<std::string>{"took 5", "took 6", "took 7", "took 8", "took 9",
                                                "error 0", "error 1"}));
  LogQuery t{.tenant = "t", .trace_id = std::string(31, 'a') + "b", .limit = 3};
  EXPECT_EQ(Lines(t), (std::vector<std::string>{"error 7", "error 8", "error 9"}));
  LogQuery re{.tenant = "t", .limit = 100};
  re.q = *Pattern::Parse("/^took [3-4]$/");
  EXPECT_EQ(Lines(re), (std::vector<std::string>{"took 3", "took 4"}));
  re.q = *Pattern::Parse("error 9");
  EXPECT_EQ(Lines(re), (std::vector<std::string>{"error 9"}));
}

TEST_P(LogStoreTest, PruneKeepsTheRetentionAndTheCapPerTenant) {
  LogOptions o;
  o.retention_ms = 10000;
  o.max_bytes_per_tenant = 20000;
  Open(o);
  Add("t", "web", "i-1", 100, "old ", 1000);  // past the retention at now = 20000
  Add("t", "web", "i-1", 100, "new ", 15000);
  Add("big", "web", "i-1", 400, std::string(100, 'x'), 15000);  // ~60 KB: over its cap
  ASSERT_TRUE(logs_->Prune(20000).ok());
  LogQuery q{.tenant = "t", .after = Position{0, -1}, .limit = 1000};
  auto t = Lines(q);
  ASSERT_EQ(t.size(), 100u);
  EXPECT_EQ(t.front(), "new 0");
  LogQuery b{.tenant = "big", .after = Position{0, -1}, .limit = 1000};
  auto big = Lines(b);
  ASSERT_FALSE(big.empty());
  EXPECT_LT(big.size(), 400u);
  EXPECT_EQ(big.back(), std::string(100, 'x') + "399");  // the newest stay
  int64_t bytes = 0;
  ASSERT_TRUE(store_
                  ->Read([&](store::Tx& tx) {
                    auto n = tx.QueryInt("SELECT bytes FROM log_usage WHERE tenant = 'big'");
                    if (n.ok()) bytes = *n;
                    return n.status();
                  })
                  .ok());
  EXPECT_LE(bytes, o.max_bytes_per_tenant * 9 / 10);
  EXPECT_GT(bytes, o.max_bytes_per_tenant * 9 / 10 - 1000);
}

TEST_P(LogStoreTest, AFullBufferDropsAndCountsInsteadOfWaiting) {
  LogOptions o;
  o.buffer_lines = 10;
  store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "logs.db"));
  ASSERT_TRUE(store_);
  logs_ = std::make_unique<LogStore>(*store_, registry_, o);  // not started: nothing drains
  std::vector<LogLine> lines(25, LogLine{1, "run", "x", ""});
  // All or none: 25 lines do not fit a buffer of 10; the sender is told, and may send again.
  EXPECT_FALSE(logs_->Append("t", "web", "i-1", lines));
  lines.resize(10);
  EXPECT_TRUE(logs_->Append("t", "web", "i-1", lines));
  EXPECT_FALSE(logs_->Append("t", "web", "i-1", {LogLine{1, "run", "y", ""}}));
  EXPECT_NE(registry_.Render().find("drover_log_lines_dropped_total{reason=\"buffer\"} 26"),
            std::string::npos);
  logs_->Start();
  ASSERT_TRUE(logs_->Flush(std::chrono::seconds(30)));
  LogQuery q{.tenant = "t", .limit = 100};
  EXPECT_EQ(Lines(q).size(), 10u);
}

TEST_P(LogStoreTest, AnAppendIsAnsweredOnceEveryLineOfItIsCommitted) {
  LogOptions o;
  o.batch_lines = 3;  // 10 lines: four batches
  Open(o);
  int64_t index_before = store_->LastIndex();
  std::mutex mu;
  std::condition_variable cv;
  int answers = 0;
  size_t seen_at_answer = 0;
  std::vector<LogLine> lines;
  for (int i = 0; i < 10; ++i) lines.push_back({1000 + i, "run", "l" + std::to_string(i), ""});
  ASSERT_TRUE(logs_->Append("t", "web", "i-1", lines, [&](Status s) {
    EXPECT_TRUE(s.ok()) << s.message();
    // What the sender is told is stored is there for any reader, now.
    size_t n = Lines(LogQuery{.tenant = "t", .limit = 100}).size();
    std::lock_guard lock(mu);
    seen_at_answer = n;
    ++answers;
    cv.notify_all();
  }));
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answers > 0; }));
  EXPECT_EQ(seen_at_answer, 10u);
  lock.unlock();
  ASSERT_TRUE(logs_->Flush(std::chrono::seconds(30)));
  lock.lock();
  EXPECT_EQ(answers, 1);
  // Log batches number themselves: the change index (cached reads key on it) stands still.
  EXPECT_EQ(store_->LastIndex(), index_before);
  auto page = logs_->Read(LogQuery{.tenant = "t", .limit = 100});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->lines.size(), 10u);
  EXPECT_LT(page->lines[2].pos, page->lines[3].pos);  // batches in order
  EXPECT_EQ(page->lines[3].pos.n, 0);
}

}  // namespace
}  // namespace drover::logs
