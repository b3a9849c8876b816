#include "alerts/series.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace drover::alerts {
namespace {

TEST(Series, ValueIsTheNewestSample) {
  Series s(60'000);
  EXPECT_FALSE(s.Evaluate(Transform::kValue));
  s.Add(1000, 3);
  s.Add(2000, 5);
  EXPECT_EQ(*s.Evaluate(Transform::kValue), 5);
  s.Add(1500, 99);  // older than the newest: ignored
  s.Add(3000, NAN);
  EXPECT_EQ(*s.Evaluate(Transform::kValue), 5);
}

TEST(Series, RateOfACounterSurvivesARestart) {
  Series s(60'000);
  s.Add(0, 100);
  EXPECT_FALSE(s.Evaluate(Transform::kRate)) << "one sample has no rate";
  s.Add(10'000, 150);  // +50
  s.Add(20'000, 20);   // restarted: +20
  s.Add(30'000, 50);   // +30
  EXPECT_DOUBLE_EQ(*s.Evaluate(Transform::kRate), 100.0 / 30);
}

TEST(Series, DeltaOfAGaugeOverTheWindow) {
  Series s(30'000);
  for (int i = 0; i <= 10; ++i) s.Add(i * 10'000, i * i);
  // Kept: samples from 70 s on (30 s before the newest at 100 s).
  EXPECT_EQ(s.size(), 4u);
  EXPECT_DOUBLE_EQ(*s.Evaluate(Transform::kDelta), 100 - 49);
  EXPECT_DOUBLE_EQ(*s.Evaluate(Transform::kRate), (100.0 - 49) / 30);
}

TEST(Series, SamplesTooCloseTogetherSayNothing) {
  Series s(60'000);
  s.Add(0, 1);
  s.Add(500, 2);
  EXPECT_FALSE(s.Evaluate(Transform::kDelta));
  EXPECT_TRUE(s.Evaluate(Transform::kValue));
}

TEST(HistogramQuantile, InterpolatesInTheBucketTheRankFallsIn) {
  const double inf = std::numeric_limits<double>::infinity();
  // 100 observations: 50 up to 0.1, 40 more up to 0.5, 10 more up to 1.
  std::vector<std::pair<double, double>> h = {{0.1, 50}, {0.5, 90}, {1, 100}, {inf, 100}};
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.5, h), 0.1);
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.7, h), 0.1 + 0.4 * 20 / 40);
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.99, h), 0.5 + 0.5 * 9 / 10);
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.25, h), 0.05);  // within the first bucket, from 0
  // Some in +Inf: the rank there reads as the highest finite bound.
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.99, {{0.1, 5}, {1, 8}, {inf, 10}}), 1);
  EXPECT_FALSE(HistogramQuantile(0.99, {{0.1, 0}, {inf, 0}}));  // no observations
  EXPECT_FALSE(HistogramQuantile(0.99, {}));
  EXPECT_FALSE(HistogramQuantile(0.99, {{0.1, 3}}));  // no +Inf bucket
}

}  // namespace
}  // namespace drover::alerts
