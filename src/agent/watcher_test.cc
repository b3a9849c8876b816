#include "agent/watcher.h"

#include <gtest/gtest.h>

namespace drover::agent {
namespace {

using Vars = std::map<std::string, std::string>;
const TimePoint kNow = *ParseRfc3339("2026-11-23T12:00:00Z");

std::optional<int64_t> Apply(const Vars& v, std::optional<int64_t> last = std::nullopt,
                             const std::string& cloud = "aws",
                             const std::string& region = "eu-central-1") {
  return DecideCapacity(v, cloud, region, kNow, last).apply;
}

TEST(Watcher, ResolvesTheCapacityMapForItsOwnCloudAndRegion) {
  Vars v{{"cc-a-desired-capacity", R"({"all":3,"aws":{"all":2,"eu-central-1":1}})"}};
  EXPECT_EQ(Apply(v), 1);
  EXPECT_EQ(Apply(v, std::nullopt, "aws", "us-east-1"), 2);
  EXPECT_EQ(Apply(v, std::nullopt, "gcp", "europe-west1"), 3);
  EXPECT_EQ(Apply({{"cc-a-desired-capacity", "4"}}), 4);
}

TEST(Watcher, LeavesTheGroupAloneWhenNothingApplies) {
  EXPECT_EQ(Apply({}), std::nullopt);
  EXPECT_EQ(Apply({{"cc-a-desired-capacity", "-"}}), std::nullopt);
  EXPECT_EQ(Apply({{"cc-a-desired-capacity", R"({"aws":{"eu-central-1":"x"},"all":3})"}}),
            std::nullopt);
  auto d = DecideCapacity({{"cc-a-desired-capacity", R"({"gcp":2})"}}, "aws", "eu-central-1", kNow,
                          std::nullopt);
  EXPECT_EQ(d.apply, std::nullopt);
  EXPECT_NE(d.why.find("aws.eu-central-1"), std::string::npos) << d.why;
}

TEST(Watcher, SkipsANoOpChange) {
  Vars v{{"cc-a-desired-capacity", "3"}};
  EXPECT_EQ(Apply(v, 3), std::nullopt);
  EXPECT_EQ(Apply(v, 2), 3);
}

TEST(Watcher, FollowsTheWindowAndKeepsQuietInTheMinuteBeforeTheStop) {
  Vars v{{"cc-a-desired-capacity", "3"}};
  v["cc-a-start"] = "2026-11-23T12:05:00Z";
  v["cc-a-stop"] = "2026-11-23T18:00:00Z";
  EXPECT_EQ(Apply(v), std::nullopt) << "before the start";
  v["cc-a-start"] = "2026-11-23T11:00:00Z";
  EXPECT_EQ(Apply(v), 3);
  v["cc-a-stop"] = "2026-11-23T12:00:30Z";
  auto quiet = DecideCapacity(v, "aws", "", kNow, 1);
  EXPECT_EQ(quiet.apply, std::nullopt);
  EXPECT_NE(quiet.why.find("60 s"), std::string::npos) << quiet.why;
  v["cc-a-stop"] = "2026-11-23T12:00:00Z";
  EXPECT_EQ(Apply(v, 3), 0) << "at the stop";
  EXPECT_EQ(Apply(v, 0), std::nullopt) << "0 already applied";
  // A start set after the stop that passed opens the next window.
  v["cc-a-start"] = "2026-11-23T11:59:00Z";
  v["cc-a-stop"] = "2026-11-23T11:00:00Z";
  EXPECT_EQ(Apply(v, 0), 3);
}

TEST(Watcher, WakesAtTheNextBoundary) {
  Vars v{{"cc-a-start", "2026-11-23T13:00:00Z"}, {"cc-a-stop", "2026-11-23T19:00:00Z"}};
  EXPECT_EQ(NextWatcherChange(v, kNow), ParseRfc3339("2026-11-23T13:00:00Z"));
  EXPECT_EQ(NextWatcherChange(v, *ParseRfc3339("2026-11-23T14:00:00Z")),
            ParseRfc3339("2026-11-23T18:59:00Z"));
  EXPECT_EQ(NextWatcherChange(v, *ParseRfc3339("2026-11-23T18:59:30Z")),
            ParseRfc3339("2026-11-23T19:00:00Z"));
  EXPECT_EQ(NextWatcherChange(v, *ParseRfc3339("2026-11-23T20:00:00Z")), std::nullopt);
  EXPECT_EQ(NextWatcherChange({}, kNow), std::nullopt);
}

}  // namespace
}  // namespace drover::agent
