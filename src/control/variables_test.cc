#include "control/variables.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <mutex>

#include "testing/store_fixture.h"

namespace drover::control {
namespace {

class VariablesTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "v.db"));
    ASSERT_TRUE(store_);
    vars_ = std::make_unique<VariableService>(*store_, SystemClock::Get());
  }
  Result<PutResult> Put(std::string tenant, std::string key, std::string env, std::string value) {
    std::promise<Result<PutResult>> p;
    vars_->Put(tenant, key, env, value, [&](Result<PutResult> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  Status Delete(std::string tenant, std::string key, std::string env) {
    std::promise<Status> p;
    vars_->Delete(tenant, key, env, [&](Status s) { p.set_value(s); });
    return p.get_future().get();
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<VariableService> vars_;
};

DROVER_ON_ALL_BACKENDS(VariablesTest);

TEST_P(VariablesTest, PutCreatesThenReplacesAndBumpsTheIndex) {
  auto a = Put("t", "cc-a-ref", "", "main");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->variable.create_index, 1);
  auto b = Put("t", "cc-a-ref", "", "v2");
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->created);
  EXPECT_EQ(b->variable.create_index, 1);
  EXPECT_EQ(b->variable.modify_index, 2);
  EXPECT_EQ(store_->LastIndex(), 2);
  auto got = vars_->Get("t", "cc-a-ref", "");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "v2");
}

TEST_P(VariablesTest, ScopesAndTenantsAreSeparate) {
  ASSERT_TRUE(Put("t", "k", "", "global").ok());
  ASSERT_TRUE(Put("t", "k", "sim-eu", "scoped").ok());
  ASSERT_TRUE(Put("other", "k", "", "theirs").ok());
  EXPECT_EQ(vars_->Get("t", "k", "")->value, "global");
  EXPECT_EQ(vars_->Get("t", "k", "sim-eu")->value, "scoped");
  EXPECT_EQ(vars_->Get("other", "k", "")->value, "theirs");
  auto missing = vars_->Get("t", "k", "sim-us");
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_EQ(missing.status().message(), "variable 'k' is not set in environment 'sim-us'");
}

TEST_P(VariablesTest, DeleteBumpsTheIndexAndReportsMissing) {
  ASSERT_TRUE(Put("t", "k", "", "v").ok());
  ASSERT_TRUE(Delete("t", "k", "").ok());
  EXPECT_EQ(store_->LastIndex(), 2);
  EXPECT_TRUE(vars_->Get("t", "k", "").status().IsNotFound());
  EXPECT_TRUE(Delete("t", "k", "").IsNotFound());
  EXPECT_EQ(store_->LastIndex(), 2) << "a failed delete changes nothing";
}

TEST_P(VariablesTest, ListFiltersByPrefixAndScopeAndPages) {
  for (auto k : {"cc-a-ref", "cc-a-release", "cc-w-note", "user-var"}) {
    ASSERT_TRUE(Put("t", k, "", "g").ok());
  }
  ASSERT_TRUE(Put("t", "cc-a-ref", "sim-eu", "e").ok());
  ListQuery q;
  q.prefix = "cc-a-";
  auto all = vars_->List("t", q);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->items.size(), 3u);
  EXPECT_EQ(all->items[0].environment, "");
  EXPECT_EQ(all->items[1].environment, "sim-eu");
  EXPECT_EQ(all->items[2].key, "cc-a-release");

  q.environment = "";
  EXPECT_EQ(vars_->List("t", q)->items.size(), 2u);
  q.environment = "sim-eu";
  EXPECT_EQ(vars_->List("t", q)->items.size(), 1u);

  ListQuery paged;
  paged.limit = 2;
  std::vector<std::string> seen;
  do {
    auto page = vars_->List("t", paged);
    ASSERT_TRUE(page.ok());
    for (auto& v : page->items) seen.push_back(v.key + "/" + v.environment);
    paged.cursor = page->next_cursor;
  } while (!paged.cursor.empty());
  EXPECT_EQ(seen, (std::vector<std::string>{"cc-a-ref/", "cc-a-ref/sim-eu", "cc-a-release/",
                                            "cc-w-note/", "user-var/"}));
  paged.cursor = "zz";
  EXPECT_EQ(vars_->List("t", paged).status().code(), Status::Code::kInvalidArgument);
}

TEST_P(VariablesTest, ValidationNamesFields) {
  auto r = Put("t", "Bad_Key", "Bad Env", std::string(kMaxValueBytes + 1, 'x'));
  ASSERT_EQ(r.status().code(), Status::Code::kValidation);
  ASSERT_EQ(r.status().errors().size(), 3u);
  EXPECT_EQ(r.status().errors()[0].field, "key");
  EXPECT_EQ(r.status().errors()[1].field, "environment");
  EXPECT_EQ(r.status().errors()[2].field, "value");
  auto nul = Put("t", "k", "", std::string("a\0b", 3));
  ASSERT_EQ(nul.status().code(), Status::Code::kValidation);
  EXPECT_EQ(nul.status().errors()[0].field, "value");
}

TEST_P(VariablesTest, ValuesKeepEveryByte) {
  std::string v = "line1\nline2 \"quoted\" {\"json\": [1,2]} \t tab";
  ASSERT_TRUE(Put("t", "k", "", v).ok());
  EXPECT_EQ(vars_->Get("t", "k", "")->value, v);
}

TEST_P(VariablesTest, OnlyWatcherVariablesNotifyTheWatcherTopic) {
  // In commit order. (The published index is the highest seen so far, which on PostgreSQL
  // may already be a later commit's: the topics are what this test is about.)
  std::mutex mu;
  std::vector<std::vector<std::string>> topics;
  int sub = store_->Subscribe([&](const store::Change& c) {
    std::lock_guard lock(mu);
    if (!c.resync) topics.push_back(c.topics);  // a (re)connecting listener may add a resync
  });
  ASSERT_TRUE(Put("t", "cc-a-ref", "", "main").ok());
  ASSERT_TRUE(Put("t", "cc-w-stop", "", "0 18 * * *").ok());
  ASSERT_TRUE(Delete("t", "cc-w-stop", "").ok());
  ASSERT_TRUE(testing::WaitFor([&] {
    std::lock_guard lock(mu);
    return topics.size() >= 3;
  }));
  store_->Unsubscribe(sub);
  std::lock_guard lock(mu);
  using V = std::vector<std::string>;
  ASSERT_EQ(topics.size(), 3u);
  // Every change also notifies the change feed ("events").
  EXPECT_EQ(topics[0], (V{"variables", "events"}));
  EXPECT_EQ(topics[1], (V{"variables", "variables/cc-w", "events"}));
  EXPECT_EQ(topics[2], (V{"variables", "variables/cc-w", "events"})) << "a delete too";
}

TEST_P(VariablesTest, AllWithPrefixReadsEveryTenantAndOnlyThePrefix) {
  for (auto t : {"a", "b", "c"}) {
    for (auto k : {"cc-v-x", "cc-w-start", "cc-w-stop", "cc-x"}) ASSERT_TRUE(Put(t, k, "", t).ok());
  }
  ASSERT_TRUE(Put("b", "cc-w-start", "web", "scoped").ok());
  auto all = vars_->AllWithPrefix("cc-w-");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::vector<std::string> got;
  for (auto& [tenant, v] : *all) got.push_back(tenant + "/" + v.key + "/" + v.environment);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"a/cc-w-start/", "a/cc-w-stop/", "b/cc-w-start/",
                                           "b/cc-w-start/web", "b/cc-w-stop/", "c/cc-w-start/",
                                           "c/cc-w-stop/"}));
}

}  // namespace
}  // namespace drover::control
