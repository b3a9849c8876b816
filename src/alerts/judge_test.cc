#include "alerts/judge.h"

#include <gtest/gtest.h>

namespace drover::alerts {
namespace {

TEST(Judge, ThresholdsCompareTheValue) {
  Condition c;
  c.op = Op::kGt;
  c.value = 0;
  SeasonalBaseline unused;
  EXPECT_TRUE(Holds(c, 1, 0, unused));
  EXPECT_FALSE(Holds(c, 0, 0, unused));
}

TEST(Judge, AnomaliesByDirectionAndK) {
  Condition c;
  c.kind = Condition::kAnomaly;
  c.k = 3;
  SeasonalBaseline b(BaselineFor(c));
  // Alternating 90 and 110: center 100, spread 10; the band is 70..130 with k = 3.
  for (int i = 0; i < 40; ++i) b.Observe(i * 1000, i % 2 ? 110 : 90);
  int64_t t = 40'000;
  EXPECT_FALSE(Holds(c, 125, t, b));
  EXPECT_TRUE(Holds(c, 135, t, b));
  EXPECT_TRUE(Holds(c, 65, t, b));
  c.direction = Direction::kUp;
  EXPECT_TRUE(Holds(c, 135, t, b));
  EXPECT_FALSE(Holds(c, 65, t, b));
  c.direction = Direction::kDown;
  EXPECT_FALSE(Holds(c, 135, t, b));
  EXPECT_TRUE(Holds(c, 65, t, b));
  SeasonalBaseline empty(BaselineFor(c));
  EXPECT_FALSE(Holds(c, 1e9, t, empty)) << "no judgement without history";
}

}  // namespace
}  // namespace drover::alerts
