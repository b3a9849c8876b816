#include "store/lease.h"

#include <gtest/gtest.h>

#include <thread>

#include "testing/store_fixture.h"

namespace drover::store {
namespace {

using namespace std::chrono_literals;

class LeaseTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_));
    ASSERT_TRUE(store_);
    leases_ = std::make_unique<Leases>(*store_);
  }
  // A write fenced by `lease`, as work done under a lease is.
  Status FencedWrite(const Lease& lease) {
    return WriteSync(*store_, [&](Tx& tx) -> Status {
      DROVER_RETURN_IF_ERROR(Leases::Fence(tx, lease));
      return tx.Exec("INSERT INTO counters (name, value) VALUES (?, 1)", {lease.holder + "-work"})
          .status();
    });
  }
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Leases> leases_;
};
DROVER_ON_ALL_BACKENDS(LeaseTest);

TEST_P(LeaseTest, OneHolderAtATimeAndTheHolderExtends) {
  auto a = leases_->Acquire("env/web", "server-a", 30s);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->generation, 1);
  EXPECT_EQ(a->holder, "server-a");
  auto b = leases_->Acquire("env/web", "server-b", 30s);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Status::Code::kConflict);
  EXPECT_NE(b.status().message().find("held by server-a"), std::string::npos);
  auto again = leases_->Acquire("env/web", "server-a", 60s);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->generation, 1);
  EXPECT_GT(again->expires_at, a->expires_at);
  auto renewed = leases_->Renew(*again, 30s);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(renewed->generation, 1);
}

TEST_P(LeaseTest, ExpiryHandsOverWithANewGenerationAndFencesTheOldHolder) {
  auto a = leases_->Acquire("scheduler", "server-a", 200ms);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(FencedWrite(*a).ok());
  // server-a "pauses"; once its lease expires, server-b takes over.
  Result<Lease> b = Status::Unavailable("not yet");
  ASSERT_TRUE(testing::WaitFor([&] {
    b = leases_->Acquire("scheduler", "server-b", 30s);
    return b.ok();
  }));
  EXPECT_EQ(b->generation, 2);
  // server-a comes back: its renewal and its fenced writes are refused.
  auto renew = leases_->Renew(*a, 30s);
  EXPECT_EQ(renew.status().code(), Status::Code::kConflict);
  Status stale = WriteSync(*store_, [&](Tx& tx) { return Leases::Fence(tx, *a); });
  EXPECT_EQ(stale.code(), Status::Code::kConflict);
  EXPECT_NE(stale.message().find("generation 1"), std::string::npos) << stale.message();
  EXPECT_TRUE(FencedWrite(*b).ok());
}

TEST_P(LeaseTest, ReleaseFreesAtOnceAndGenerationsNeverRepeat) {
  auto a = leases_->Acquire("env/db", "server-a", 30s);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(leases_->Release(*a).ok());
  EXPECT_EQ(leases_->Renew(*a, 30s).status().code(), Status::Code::kConflict);
  auto b = leases_->Acquire("env/db", "server-b", 30s);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->generation, 2);
  auto a2 = leases_->Acquire("env/other", "server-a", 30s);
  ASSERT_TRUE(a2.ok());
  auto list = leases_->List("env/");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "env/db");
  EXPECT_EQ((*list)[0].holder, "server-b");
  EXPECT_EQ((*list)[1].name, "env/other");
}

TEST_P(LeaseTest, RenewAllExtendsTheHeldOnesAndNamesTheLostOnes) {
  auto a = leases_->Acquire("env/a", "server-a", 30s);
  auto b = leases_->Acquire("env/b", "server-a", 30s);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(leases_->Release(*b).ok());
  auto c = leases_->Acquire("env/b", "server-c", 30s);  // b changed hands
  ASSERT_TRUE(c.ok());
  auto r = leases_->RenewAll({*a, *b}, 60s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  ASSERT_TRUE((*r)[0].has_value());
  EXPECT_EQ((*r)[0]->generation, a->generation);
  EXPECT_GT((*r)[0]->expires_at, a->expires_at);
  EXPECT_FALSE((*r)[1].has_value());
  EXPECT_FALSE(leases_->Acquire("env/a", "server-c", 30s).ok()) << "a is still server-a's";
}

TEST_P(LeaseTest, RacingAcquirersGetOneWinner) {
  std::atomic<int> won{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (leases_->Acquire("contended", "server-" + std::to_string(i), 30s).ok()) won++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
}

}  // namespace
}  // namespace drover::store
