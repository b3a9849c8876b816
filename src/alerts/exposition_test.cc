#include "alerts/exposition.h"

#include <gtest/gtest.h>

#include <cmath>

#include "metrics/registry.h"

namespace drover::alerts {
namespace {

TEST(Exposition, ReadsBackWhatTheRegistryRenders) {
  metrics::Registry r;
  r.Counter("plain_total", "A counter.").Inc(7);
  auto& g = r.GaugeFamily("depth", "A gauge.", {"tenant", "queue"});
  g.With({"t1", "a \"quoted\" name"}).Set(2.5);
  g.With({"t2", "line\nbreak"}).Set(-1);
  r.Histogram("lat_seconds", "A histogram.", {0.1, 1}).Observe(0.5);
  auto samples = ParseExposition(r.Render());
  auto find = [&](std::string_view name, std::string_view queue = "") -> const MetricSample* {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      auto it = s.labels.find("queue");
      if (queue.empty() || (it != s.labels.end() && it->second == queue)) return &s;
    }
    return nullptr;
  };
  ASSERT_TRUE(find("plain_total"));
  EXPECT_EQ(find("plain_total")->value, 7);
  ASSERT_TRUE(find("depth", "a \"quoted\" name"));
  EXPECT_EQ(find("depth", "a \"quoted\" name")->value, 2.5);
  EXPECT_EQ(find("depth", "a \"quoted\" name")->labels.at("tenant"), "t1");
  ASSERT_TRUE(find("depth", "line\nbreak"));
  EXPECT_EQ(find("depth", "line\nbreak")->value, -1);
  ASSERT_TRUE(find("lat_seconds_count"));
  EXPECT_EQ(find("lat_seconds_count")->value, 1);
}

TEST(Exposition, SkipsWhatIsNotASample) {
  auto s = ParseExposition(
      "# HELP x y\n\nx 1\n{a=\"b\"} 2\ny{a=\"b} 3\nz{a=\"b\"} nope\nw NaN\nv +Inf 1700000000\n"
      "u{a=\"1\",} 4");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].name, "x");
  EXPECT_TRUE(std::isnan(s[1].value));
  EXPECT_TRUE(std::isinf(s[2].value));
  EXPECT_EQ(s[3].labels.at("a"), "1");
}

}  // namespace
}  // namespace drover::alerts
