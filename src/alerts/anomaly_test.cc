#include "alerts/anomaly.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace drover::alerts {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kWeek = 7 * kDay;
// Monday 2026-01-05 00:00 UTC.
constexpr int64_t kMonday = 1'767'571'200'000;

// A request rate with a daily cycle (busy afternoons, quiet nights), quiet weekends and noise:
// what a route's traffic or a queue's depth looks like.
struct Seasonal {
  double base = 100, daily = 40, weekend = 0.5, noise = 5;
  double Usual(int64_t t) const {
    int64_t hour_of_week = (t - kMonday) % kWeek / kHour;
    bool weekend_day = hour_of_week >= 5 * 24;
    double phase = 2 * M_PI * static_cast<double>((t - kMonday) % kDay) / kDay;
    double v = base + daily * std::sin(phase - M_PI / 2);  // lowest at midnight
    return weekend_day ? v * weekend : v;
  }
};

// Feeds `weeks` of one value a minute into `b`, from kMonday. `inject(t, usual)` may replace
// a value; `on_fire(t)` is called when `for_minutes` values in a row are anomalous (once per
// run of anomalous values). Evaluation starts after `learn_weeks`.
int Feed(SeasonalBaseline& b, const Seasonal& s, int weeks, int learn_weeks, int for_minutes,
         const std::function<double(int64_t, double)>& inject,
         const std::function<void(int64_t)>& on_fire, uint32_t seed = 42) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> noise(0, s.noise);
  int fired = 0, streak = 0;
  for (int64_t t = kMonday; t < kMonday + weeks * kWeek; t += kMinute) {
    double v = s.Usual(t) + noise(gen);
    if (inject) v = inject(t, v);
    if (t >= kMonday + learn_weeks * kWeek) {
      if (b.Anomalous(t, v)) {
        if (++streak == for_minutes) {
          ++fired;
          if (on_fire) on_fire(t);
        }
      } else {
        streak = 0;
      }
    }
    b.Observe(t, v);
  }
  return fired;
}

TEST(Anomaly, HoursOfTheWeekStartOnMondayUtc) {
  EXPECT_EQ(HourOfWeek(kMonday), 0);
  EXPECT_EQ(HourOfWeek(kMonday + 10 * kHour + 59 * kMinute), 10);
  EXPECT_EQ(HourOfWeek(kMonday + 6 * kDay + 23 * kHour), 167);
  EXPECT_EQ(HourOfWeek(kMonday + kWeek), 0);
  EXPECT_EQ(HourOfWeek(0), 72);   // 1970-01-01 was a Thursday
  EXPECT_EQ(HourOfWeek(-1), 71);  // the hour before it
  EXPECT_EQ(HourOfDay(kMonday + 13 * kHour + 5), 13);
  EXPECT_EQ(HourOfDay(-1), 23);
}

TEST(Anomaly, NoJudgementWithoutHistory) {
  SeasonalBaseline b;
  EXPECT_FALSE(b.BandAt(kMonday).learned);
  EXPECT_FALSE(b.Anomalous(kMonday, 1e12));
  for (int i = 0; i < 11; ++i) b.Observe(kMonday + i * kMinute, 10);
  EXPECT_FALSE(b.Anomalous(kMonday + 11 * kMinute, 1e12)) << "11 values are not enough";
  b.Observe(kMonday + 11 * kMinute, 10);
  EXPECT_TRUE(b.Anomalous(kMonday + 12 * kMinute, 1e12));
  EXPECT_FALSE(b.Anomalous(kMonday + 12 * kMinute, 10.1))
      << "within the 2 % floor of a flat series";
}

TEST(Anomaly, ANoisySeasonalMonthStaysQuiet) {
  // One week to learn, then a month (4 weeks) judged with `for: 5m`: nothing fires.
  for (uint32_t seed : {1u, 2u, 3u}) {
    SeasonalBaseline b;
    Seasonal s;
    std::vector<int64_t> fired;
    Feed(
        b, s, 5, 1, 5, nullptr, [&](int64_t t) { fired.push_back(t); }, seed);
    EXPECT_TRUE(fired.empty()) << "seed " << seed << ": fired " << fired.size()
                               << " times, first at minute "
                               << (fired.empty() ? 0 : (fired[0] - kMonday) / kMinute);
  }
}

TEST(Anomaly, InjectedAnomaliesAreCaught) {
  struct Case {
    const char* what;
    int64_t at;  // from kMonday, in the judged weeks
    int64_t length;
    std::function<double(double)> change;
  };
  std::vector<Case> cases = {
      {"a spike at a weekday's peak", 2 * kWeek + 2 * kDay + 14 * kHour, 15 * kMinute,
       [](double v) { return v + 100; }},
      {"an outage: the rate drops to zero", 2 * kWeek + 3 * kDay + 11 * kHour, 15 * kMinute,
       [](double) { return 0.0; }},
      {"a weekday's traffic on a Saturday", 3 * kWeek + 5 * kDay + 14 * kHour, 30 * kMinute,
       [](double v) { return v * 2; }},
      {"a night that is suddenly busy", 3 * kWeek + 1 * kDay + 3 * kHour, 20 * kMinute,
       [](double v) { return v + 60; }},
  };
  for (const auto& c : cases) {
    SeasonalBaseline b;
    Seasonal s;
    int64_t start = kMonday + c.at, end = start + c.length;
    std::vector<int64_t> fired;
    Feed(
        b, s, 5, 1, 5, [&](int64_t t, double v) { return t >= start && t < end ? c.change(v) : v; },
        [&](int64_t t) { fired.push_back(t); });
    ASSERT_EQ(fired.size(), 1u) << c.what;
    EXPECT_GE(fired[0], start) << c.what;
    EXPECT_LT(fired[0], end) << c.what << ": fired within the anomaly, after `for`";
  }
}

TEST(Anomaly, WeeklySeasonalityIsLearned) {
  // On a Saturday afternoon a weekday's level is news: the hour-of-week bucket knows weekends
  // are quiet, where an hour-of-day baseline would not.
  SeasonalBaseline b;
  Seasonal s;
  s.noise = 0;
  Feed(b, s, 3, 3, 5, nullptr, nullptr);
  int64_t saturday = kMonday + 3 * kWeek + 5 * kDay + 15 * kHour;
  int64_t wednesday = kMonday + 3 * kWeek + 2 * kDay + 15 * kHour;
  double weekday_level = s.Usual(wednesday);
  EXPECT_FALSE(b.Anomalous(wednesday, weekday_level));
  EXPECT_TRUE(b.Anomalous(saturday, weekday_level));
  EXPECT_FALSE(b.Anomalous(saturday, s.Usual(saturday)));
}

TEST(Anomaly, AnAnomalyIsNotLearnedAsNormal) {
  // Two hours at triple the rate on a Tuesday: the next Tuesday, triple is still news.
  SeasonalBaseline b;
  Seasonal s;
  int64_t start = kMonday + 2 * kWeek + 1 * kDay + 13 * kHour, end = start + 2 * kHour;
  Feed(
      b, s, 3, 1, 5, [&](int64_t t, double v) { return t >= start && t < end ? v * 3 : v; },
      nullptr);
  int64_t next = start + kWeek + 30 * kMinute;
  EXPECT_TRUE(b.Anomalous(next, s.Usual(next) * 3));
  EXPECT_FALSE(b.Anomalous(next, s.Usual(next)));
}

TEST(Anomaly, ALevelShiftBecomesTheNewNormal) {
  // Traffic that doubles for good alarms at first, and is learned within a few weeks (the
  // buckets' half-life is two weeks): a permanent change does not alarm forever.
  SeasonalBaseline b;
  Seasonal s;
  int64_t shift = kMonday + 2 * kWeek;
  int64_t last_fire = 0;
  int fired = Feed(
      b, s, 8, 1, 5, [&](int64_t t, double v) { return t >= shift ? v * 2 : v; },
      [&](int64_t t) { last_fire = t; });
  EXPECT_GE(fired, 1);
  EXPECT_LT(last_fire, kMonday + 6 * kWeek) << "still alarming after four weeks";
}

TEST(Anomaly, StateRoundTripsThroughJson) {
  SeasonalBaseline b;
  Seasonal s;
  Feed(b, s, 1, 1, 5, nullptr, nullptr);
  auto back = SeasonalBaseline::FromJson(b.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().message();
  for (int64_t t = kMonday + kWeek; t < kMonday + 2 * kWeek; t += 7 * kHour + 13 * kMinute) {
    Band x = b.BandAt(t), y = back->BandAt(t);
    EXPECT_EQ(x.learned, y.learned);
    EXPECT_DOUBLE_EQ(x.center, y.center);
    EXPECT_DOUBLE_EQ(x.spread, y.spread);
  }
  for (const char* bad : {"", "[]", "{}", R"({"week":[],"day":[]})", R"({"week":1,"day":2})",
                          "{\"week\":[[1,2,-3,4,5]],\"day\":[]}"}) {
    EXPECT_FALSE(SeasonalBaseline::FromJson(bad).ok()) << bad;
  }
}

TEST(Anomaly, NonFiniteValuesAreIgnored) {
  SeasonalBaseline b;
  for (int i = 0; i < 20; ++i) b.Observe(kMonday + i * kMinute, 5);
  b.Observe(kMonday + 20 * kMinute, std::nan(""));
  b.Observe(kMonday + 21 * kMinute, INFINITY);
  Band band = b.BandAt(kMonday + 22 * kMinute);
  EXPECT_TRUE(std::isfinite(band.center));
  EXPECT_DOUBLE_EQ(band.center, 5);
}

}  // namespace
}  // namespace drover::alerts
