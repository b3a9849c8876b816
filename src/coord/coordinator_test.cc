#include "coord/coordinator.h"

#include <gtest/gtest.h>

#include "testing/store_fixture.h"

namespace drover::coord {
namespace {

using namespace std::chrono_literals;

class CoordinatorTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  std::unique_ptr<store::Store> OpenStore() {
    if (url_.empty()) url_ = testing::NewStoreUrl(GetParam(), dir_);
    return testing::OpenStoreAt(url_);
  }
  CoordinatorOptions Options(std::string id) {
    CoordinatorOptions o;
    o.server_id = std::move(id);
    o.ttl = 1500ms;
    o.resources = {"a", "b", "c", "d"};
    return o;
  }
  testing::TempDir dir_;
  std::string url_;
};
DROVER_ON_ALL_BACKENDS(CoordinatorTest);

TEST_P(CoordinatorTest, ALoneServerLeadsAndHoldsEverythingThenReleasesOnStop) {
  auto s = OpenStore();
  std::atomic<int> acquired{0}, lost{0};
  auto o = Options("one");
  o.on_acquired = [&](const store::Lease&) { acquired++; };
  o.on_lost = [&](const std::string&) { lost++; };
  Coordinator c(*s, o);
  c.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return acquired.load() == 5; }));  // leader + 4
  auto v = c.View();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->leader);
  EXPECT_EQ(v->held.size(), 4u);
  ASSERT_EQ(v->servers.size(), 1u);
  EXPECT_EQ(v->servers[0].holder, "one");
  ASSERT_TRUE(c.Held("c").has_value());
  EXPECT_EQ(c.Held("c")->holder, "one");
  c.Stop();
  store::Leases leases(*s);
  auto after = leases.List("");
  ASSERT_TRUE(after.ok());
  for (const auto& l : *after) EXPECT_EQ(l.expires_at, 0) << l.name << " released on Stop";
}

// Two servers on one database (PostgreSQL): the second takes half once it joins.
class SharedCoordinatorTest : public CoordinatorTest {};
INSTANTIATE_TEST_SUITE_P(, SharedCoordinatorTest, ::testing::Values(testing::Backend::kPostgres),
                         testing::BackendName);

TEST_P(SharedCoordinatorTest, AJoiningServerGetsItsShare) {
  auto s1 = OpenStore();
  auto s2 = OpenStore();
  Coordinator one(*s1, Options("one"));
  one.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return one.View()->held.size() == 4; }));
  Coordinator two(*s2, Options("two"));
  two.Start();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return one.View()->held.size() == 2 && two.View()->held.size() == 2; }));
  EXPECT_NE(one.View()->leader, two.View()->leader) << "exactly one leader";
  two.Stop();  // releases: one takes everything back at its next round
  EXPECT_TRUE(testing::WaitFor([&] { return one.View()->held.size() == 4; }));
}

}  // namespace
}  // namespace drover::coord
