#include "gateway/upstreams.h"

#include <gtest/gtest.h>

#include <map>

namespace drover::gateway {
namespace {

using std::chrono::seconds;

std::vector<UpstreamUrl> Urls(std::initializer_list<const char*> texts) {
  std::vector<UpstreamUrl> out;
  for (const char* t : texts) out.push_back(*ParseUpstreamUrl(t));
  return out;
}

// Picks and finishes one request; returns the URL picked.
std::string Once(UpstreamSet& set, Balance b, SteadyTime now, bool ok = true,
                 std::string_view key = "") {
  auto u = set.Pick(b, key, {}, now);
  if (!u) return "";
  set.Done(u, ok, {}, now);
  return u->url.text;
}

TEST(Upstreams, RoundRobinVisitsEach) {
  UpstreamSet set;
  set.Set(Urls({"http://a:1", "http://b:1", "http://c:1"}));
  std::map<std::string, int> seen;
  SteadyTime now{};
  for (int i = 0; i < 9; ++i) ++seen[Once(set, Balance::kRoundRobin, now)];
  EXPECT_EQ(seen,
            (std::map<std::string, int>{{"http://a:1", 3}, {"http://b:1", 3}, {"http://c:1", 3}}));
}

TEST(Upstreams, LeastRequestAvoidsTheBusyOne) {
  UpstreamSet set;
  set.Set(Urls({"http://a:1", "http://b:1"}));
  SteadyTime now{};
  auto busy = set.Pick(Balance::kLeastRequest, "", {}, now);  // held in flight
  for (int i = 0; i < 5; ++i) {
    auto u = set.Pick(Balance::kLeastRequest, "", {}, now);
    EXPECT_NE(u.get(), busy.get());
    set.Done(u, true, {}, now);
  }
}

TEST(Upstreams, HashSticksAndMovesOnlyTheLeaversKeys) {
  UpstreamSet set;
  set.Set(Urls({"http://a:1", "http://b:1", "http://c:1"}));
  SteadyTime now{};
  std::map<std::string, std::string> first;
  for (int k = 0; k < 200; ++k) {
    std::string key = "user-" + std::to_string(k);
    first[key] = Once(set, Balance::kHash, now, true, key);
    EXPECT_EQ(Once(set, Balance::kHash, now, true, key), first[key]);
  }
  std::map<std::string, int> spread;
  for (const auto& [k, u] : first) ++spread[u];
  for (const auto& [u, n] : spread) EXPECT_GT(n, 30) << u;  // all three take a share
  set.Set(Urls({"http://a:1", "http://b:1"}));              // c leaves
  for (const auto& [key, was] : first) {
    std::string now_at = Once(set, Balance::kHash, now, true, key);
    if (was != "http://c:1") {
      EXPECT_EQ(now_at, was) << key;
    }
  }
}

TEST(Upstreams, EjectsAfterFailuresForLongerEachTimeButNeverTheLast) {
  UpstreamSet set;
  set.Set(Urls({"http://a:1", "http://b:1"}));
  EjectionPolicy policy{3, std::chrono::milliseconds(10000)};
  SteadyTime t0{};
  auto a = set.Pick(Balance::kRoundRobin, "", {}, t0);
  ASSERT_EQ(a->url.text, "http://a:1");
  EXPECT_FALSE(set.Done(a, false, policy, t0));
  for (int i = 0; i < 2; ++i) {
    ++a->in_flight;                                     // as a Pick would
    EXPECT_EQ(set.Done(a, false, policy, t0), i == 1);  // the third failure in a row ejects
  }
  // Ejected for 10 s: every pick goes to b.
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(Once(set, Balance::kRoundRobin, t0 + seconds(5)), "http://b:1");
  // Back after 10 s; failing again ejects it for 20 s.
  SteadyTime t1 = t0 + seconds(11);
  for (int i = 0; i < 3; ++i) {
    ++a->in_flight;
    set.Done(a, false, policy, t1);
  }
  EXPECT_EQ(Once(set, Balance::kRoundRobin, t1 + seconds(15)), "http://b:1");
  EXPECT_EQ(Once(set, Balance::kRoundRobin, t1 + seconds(15)), "http://b:1");
  // b fails too, but it is the last one standing: never ejected.
  auto b = set.Pick(Balance::kRoundRobin, "", {}, t1 + seconds(1));
  ASSERT_EQ(b->url.text, "http://b:1");
  set.Done(b, false, policy, t1 + seconds(1));
  for (int i = 0; i < 5; ++i) {
    ++b->in_flight;
    EXPECT_FALSE(set.Done(b, false, policy, t1 + seconds(1)));
  }
  EXPECT_EQ(Once(set, Balance::kRoundRobin, t1 + seconds(2)), "http://b:1");
  // A success forgives: the next ejection of a starts again from the base time.
  auto snap = set.Snapshot(t1 + seconds(1));
  EXPECT_TRUE(snap[0].ejected);
  EXPECT_EQ(snap[0].ejections_total, 2u);
}

TEST(Upstreams, NotReadyGetsNothingAndRetriesPreferUntried) {
  UpstreamSet set;
  set.Set(Urls({"http://a:1", "http://b:1"}), /*ready=*/false);
  SteadyTime now{};
  EXPECT_EQ(set.Pick(Balance::kRoundRobin, "", {}, now), nullptr);
  set.SetReady("http://b:1", true);
  EXPECT_EQ(Once(set, Balance::kRoundRobin, now), "http://b:1");
  set.SetReady("http://a:1", true);
  auto first = set.Pick(Balance::kRoundRobin, "", {}, now);
  auto second = set.Pick(Balance::kRoundRobin, "", {first.get()}, now);
  EXPECT_NE(first.get(), second.get());
  // Set keeps the health of members that stay.
  set.Set(Urls({"http://a:1", "http://c:1"}), /*ready=*/false);
  auto views = set.Snapshot(now);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_TRUE(views[0].ready);
  EXPECT_FALSE(views[1].ready);
}

}  // namespace
}  // namespace drover::gateway
