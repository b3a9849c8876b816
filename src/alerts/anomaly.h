#pragma once
// Anomaly detection for alert rules (docs/alerts.md): a pure, seasonal baseline of one signal,
// no clock and no I/O. Time is passed in as Unix milliseconds (UTC).
//
// The baseline learns what the signal usually is at each hour of the week (168 buckets), and
// at each hour of the day (24) while the weekly buckets are still young, with an exponentially
// decaying mean and spread per bucket, so it follows a slow drift and forgets an old regime in
// a few weeks. A value is anomalous when it leaves the band center ± k·spread. A value outside
// the band is learned as if it were one spread from the center (in its direction), so an
// anomaly neither teaches the baseline that it is normal nor widens the band it is judged by;
// once values have been outside most of the time for about `adapt_after` (a lasting change of
// level, not an incident), they are learned as they are. Until a bucket has seen enough values, no
// judgement is made (never a false alarm from an empty history).
#include <array>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace drover::alerts {

struct BaselineOptions {
  double k = 4;                         // band half-width, in spreads
  double week_half_life_days = 14;      // how fast an hour-of-week bucket forgets
  double day_half_life_days = 3;        // how fast an hour-of-day bucket forgets
  int min_samples = 12;                 // values a bucket needs before it judges
  double min_spread = 1e-9;             // absolute floor on the spread (a flat series)
  double min_spread_ratio = 0.02;       // floor relative to |center|: a 2 % wobble is never news
  int64_t adapt_after_ms = 86'400'000;  // mostly outside the band this long: the new normal
};

// What the signal usually is at one instant: center ± k·spread.
struct Band {
  bool learned = false;  // false: too little history to judge
  double center = 0;
  double spread = 0;
  double low = 0;
  double high = 0;
};

// One bucket's moments, each value weighted by its age (halved every half-life).
struct Moments {
  double weight = 0;  // the decayed count of values
  double mean = 0;
  double var = 0;
  int64_t last_ms = 0;
  int64_t seen = 0;  // values ever added
  void Add(int64_t t_ms, double x, double half_life_ms);
};

class SeasonalBaseline {
 public:
  explicit SeasonalBaseline(BaselineOptions o = {}) : o_(o) {}

  // The band at `t_ms` from what was learned so far.
  Band BandAt(int64_t t_ms) const;
  // Learns `value` seen at `t_ms` (clamped to the band when it lies outside a learned one).
  void Observe(int64_t t_ms, double value);

  // Whether `value` at `t_ms` lies outside the band (false while the band is not learned).
  bool Anomalous(int64_t t_ms, double value) const;

  // The learned state as compact JSON (kept in the store between evaluations and servers).
  std::string ToJson() const;
  static Result<SeasonalBaseline> FromJson(const std::string& json, BaselineOptions o = {});

  const BaselineOptions& options() const { return o_; }

 private:
  Band Make(const Moments& m) const;
  BaselineOptions o_;
  std::array<Moments, 168> week_{};
  std::array<Moments, 24> day_{};
  // How much of the recent past was outside the band (0..1), decayed over adapt_after / 4.
  double outside_share_ = 0;
  int64_t share_at_ms_ = -1;
};

// Hour of the week (0 = Monday 00:00 UTC .. 167) and hour of the day of a Unix time in ms.
int HourOfWeek(int64_t t_ms);
int HourOfDay(int64_t t_ms);

}  // namespace drover::alerts
