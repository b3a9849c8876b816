#include "events/change_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "store/origin.h"
#include "testing/store_fixture.h"

namespace drover::events {
namespace {

class ChangeLogTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "c.db"));
    ASSERT_TRUE(store_);
    log_ = std::make_unique<ChangeLog>(*store_);
  }
  // One applied change, as `actor` would make it through the API.
  void Change(const std::string& tenant, const std::string& kind, const std::string& name,
              const std::string& actor = "k_1") {
    std::string request_id = "req-" + name;
    store::ScopedOrigin origin({actor, "user", request_id});
    ASSERT_TRUE(store::WriteSync(*store_, [&](store::Tx& tx) {
                  return Record(tx, {tenant, kind, name, "created", "{\"n\":1}"});
                }).ok());
  }
  std::vector<Entry> Feed(FeedQuery q) {
    q.upto = store_->LastIndex();
    auto r = log_->Feed(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Entry>{};
  }
  std::vector<Entry> Audit(AuditQuery q) {
    auto r = log_->Audit(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Entry>{};
  }
  static FeedQuery Tenant(std::string t, std::vector<std::string> kinds = {}) {
    FeedQuery q;
    q.tenant = std::move(t);
    q.kinds = std::move(kinds);
    return q;
  }
  static FeedQuery Kinds(std::vector<std::string> kinds) {
    FeedQuery q;
    q.kinds = std::move(kinds);
    return q;
  }
  static FeedQuery After(int64_t after, int limit) {
    FeedQuery q;
    q.after = after;
    q.limit = limit;
    return q;
  }
  static AuditQuery By(std::string actor, std::string kind = "") {
    AuditQuery q;
    q.actor = std::move(actor);
    q.kind = std::move(kind);
    return q;
  }
  static AuditQuery Page(int64_t before, int limit) {
    AuditQuery q;
    q.before = before;
    q.limit = limit;
    return q;
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ChangeLog> log_;
};

DROVER_ON_ALL_BACKENDS(ChangeLogTest);

TEST_P(ChangeLogTest, ARecordCarriesItsOriginAndTheStoresIndexAsItsSequence) {
  Change("a", "variable", "x");
  auto all = Feed({});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].seq, store_->LastIndex());
  EXPECT_EQ(all[0].tenant, "a");
  EXPECT_EQ(all[0].actor, "k_1");
  EXPECT_EQ(all[0].role, "user");
  EXPECT_EQ(all[0].request_id, "req-x");
  EXPECT_GT(all[0].at_ms, 0);
  std::string json = EntryJson(all[0]);
  EXPECT_NE(json.find("\"summary\":{\"n\":1}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"result\":\"accepted\""), std::string::npos) << json;
}

// A batch's records go in with multi-row statements (16, 8, 4, 2, 1 rows on PostgreSQL); a
// write that fails takes its records with it (the batch re-runs with savepoints).
TEST_P(ChangeLogTest, EveryRecordOfABigBatchIsWrittenAndAFailedWritesAreNot) {
  constexpr int kWrites = 61;
  std::atomic<int> left{kWrites};
  for (int i = 0; i < kWrites; ++i) {
    std::string request_id = "req-" + std::to_string(i);  // the origin views it
    store::ScopedOrigin origin({"k_batch", "user", request_id});
    store_->Write(
        [i](store::Tx& tx) -> Status {
          DROVER_RETURN_IF_ERROR(
              Record(tx, {"t", "variable", "v" + std::to_string(i), "set", "{}"}));
          if (i == 29) return Status::InvalidArgument("refused");
          return tx.NextIndex().status();
        },
        [&](Status) { --left; });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return left == 0; }, 60000));
  FeedQuery all;
  all.limit = 1000;
  auto feed = Feed(all);
  ASSERT_EQ(feed.size(), static_cast<size_t>(kWrites - 1));
  std::set<std::string> names;
  for (const auto& e : feed) {
    names.insert(e.name);
    EXPECT_EQ(e.actor, "k_batch");
    EXPECT_EQ(e.request_id, "req-" + e.name.substr(1));
    EXPECT_GT(e.at_ms, 0);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kWrites - 1));
  EXPECT_FALSE(names.count("v29")) << "the failed write's record went with it";
}

TEST_P(ChangeLogTest, TheFeedFiltersByTenantKindAndPosition) {
  Change("a", "variable", "x");
  Change("b", "variable", "y");
  Change("a", "environment", "web");
  Change("a", "schedule", "tick");
  EXPECT_EQ(Feed({}).size(), 4u);
  auto a = Feed(Tenant("a"));
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].name, "x");
  EXPECT_EQ(a[2].name, "tick");
  auto kinds = Feed(Tenant("a", {"environment", "schedule"}));
  ASSERT_EQ(kinds.size(), 2u);
  EXPECT_EQ(kinds[0].kind, "environment");
  // A kind that only contains another's name matches nothing.
  EXPECT_TRUE(Feed(Kinds({"env"})).empty());
  auto after = Feed(After(a[0].seq, 1));
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].name, "y");
  // Nothing past `upto`, the highest sequence known committed.
  FeedQuery upto;
  upto.upto = a[0].seq;
  auto r = log_->Feed(upto);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
}

TEST_P(ChangeLogTest, RefusalsAreAuditedButNotInTheFeed) {
  Change("a", "variable", "x", "k_1");
  log_->RecordRefusal({"a", "key", "k_9", "delete", "k_2", "viewer", "req-9", 403, ""});
  // The refusal's write is not waited for by its caller: wait for it here.
  for (int i = 0; i < 6000 && Audit({}).size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto audit = Audit({});
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].status, 403);  // newest first
  EXPECT_EQ(audit[0].actor, "k_2");
  EXPECT_NE(EntryJson(audit[0]).find("\"result\":\"refused\",\"status\":403"), std::string::npos);
  EXPECT_EQ(Feed({}).size(), 1u);
  EXPECT_EQ(Audit(By("k_1")).size(), 1u);
  EXPECT_EQ(Audit(By("", "key")).size(), 1u);
  AuditQuery other;
  other.tenant = "b";
  EXPECT_EQ(Audit(other).size(), 0u);
  // Paging: the cursor is the last sequence seen.
  auto page = Audit(Page(0, 1));
  ASSERT_EQ(page.size(), 1u);
  auto next = Audit(Page(page[0].seq, 1));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].actor, "k_1");
}

TEST_P(ChangeLogTest, SystemChangesAreInTheFeedButNotTheAudit) {
  {
    store::ScopedOrigin origin({"controller", "system", ""});
    ASSERT_TRUE(store::WriteSync(*store_, [](store::Tx& tx) {
                  return Record(tx, {"a", "instance", "i-1", "started", ""});
                }).ok());
  }
  EXPECT_EQ(Feed({}).size(), 1u);
  EXPECT_TRUE(Audit({}).empty());
}

TEST_P(ChangeLogTest, PruningRemembersWhereItStopped) {
  Change("a", "variable", "x");
  Change("a", "variable", "y");
  auto before = Feed({});
  ASSERT_EQ(before.size(), 2u);
  auto n = log_->Prune(std::chrono::milliseconds(0));  // everything older than now
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto through = log_->PrunedThrough();
  ASSERT_TRUE(through.ok());
  if (*n == 2) {
    EXPECT_EQ(*through, before[1].seq);
  } else {
    // The newest record may share the database clock's millisecond with the prune.
    EXPECT_EQ(*n, 1);
    EXPECT_EQ(*through, before[0].seq);
  }
  EXPECT_EQ(Feed({}).size(), 2u - static_cast<size_t>(*n));
}

TEST_P(ChangeLogTest, RefusalsOverTheRateAreCountedNotWritten) {
  ChangeLog slow(*store_, 1);  // one a second, a burst of two
  for (int i = 0; i < 10; ++i) {
    slow.RecordRefusal({"a", "key", "k", "delete", "anonymous", "none", "", 401, ""});
  }
  EXPECT_GE(slow.dropped_refusals(), 7u);
}

}  // namespace
}  // namespace drover::events
