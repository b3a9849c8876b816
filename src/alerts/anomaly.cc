#include "alerts/anomaly.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

namespace drover::alerts {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr double kDayMs = 86'400'000.0;

// Floor division: hours before 1970 still land in the right bucket.
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

int HourOfWeek(int64_t t_ms) {
  // 1970-01-01 was a Thursday: shift so that 0 is Monday 00:00.
  int64_t hours = FloorDiv(t_ms, kHourMs) + 3 * 24;
  int64_t h = hours % 168;
  return static_cast<int>(h < 0 ? h + 168 : h);
}

int HourOfDay(int64_t t_ms) {
  int64_t h = FloorDiv(t_ms, kHourMs) % 24;
  return static_cast<int>(h < 0 ? h + 24 : h);
}

void Moments::Add(int64_t t_ms, double x, double half_life_ms) {
  if (seen > 0 && t_ms > last_ms) {
    weight *= std::exp2(-static_cast<double>(t_ms - last_ms) / half_life_ms);
  }
  weight += 1;
  last_ms = std::max(last_ms, t_ms);
  ++seen;
  // West's weighted incremental mean and variance: with no decay, the plain mean and the
  // population variance.
  double a = 1 / weight;
  double d = x - mean;
  mean += a * d;
  var = (1 - a) * (var + a * d * d);
}

Band SeasonalBaseline::Make(const Moments& m) const {
  Band b;
  if (m.seen < o_.min_samples) return b;
  b.learned = true;
  b.center = m.mean;
  b.spread = std::max(
      {std::sqrt(std::max(m.var, 0.0)), o_.min_spread, o_.min_spread_ratio * std::fabs(m.mean)});
  b.low = b.center - o_.k * b.spread;
  b.high = b.center + o_.k * b.spread;
  return b;
}

Band SeasonalBaseline::BandAt(int64_t t_ms) const {
  Band week = Make(week_[static_cast<size_t>(HourOfWeek(t_ms))]);
  if (week.learned) return week;
  return Make(day_[static_cast<size_t>(HourOfDay(t_ms))]);
}

bool SeasonalBaseline::Anomalous(int64_t t_ms, double value) const {
  Band b = BandAt(t_ms);
  return b.learned && (value < b.low || value > b.high);
}

void SeasonalBaseline::Observe(int64_t t_ms, double value) {
  if (!std::isfinite(value)) return;
  Band judged = BandAt(t_ms);
  bool outside = judged.learned && (value < judged.low || value > judged.high);
  if (share_at_ms_ >= 0 && t_ms > share_at_ms_) {
    double keep = std::exp2(-static_cast<double>(t_ms - share_at_ms_) /
                            (static_cast<double>(std::max<int64_t>(o_.adapt_after_ms, 4)) / 4));
    outside_share_ = outside_share_ * keep + (outside ? 1 - keep : 0);
  }
  share_at_ms_ = std::max(share_at_ms_, t_ms);
  // Outside most of the recent past: a new level, learned as it is.
  bool adapt = outside && outside_share_ > 0.5;
  // Each bucket judges the value by its own band: a young weekly bucket learns what it sees,
  // not what the daily one expected.
  auto learn = [&](Moments& m, double half_life_ms) {
    double x = value;
    Band own = Make(m);
    if (!adapt && own.learned && (x < own.low || x > own.high)) {
      x = own.center + (x > own.high ? own.spread : -own.spread);
    }
    m.Add(t_ms, x, half_life_ms);
  };
  learn(week_[static_cast<size_t>(HourOfWeek(t_ms))], o_.week_half_life_days * kDayMs);
  learn(day_[static_cast<size_t>(HourOfDay(t_ms))], o_.day_half_life_days * kDayMs);
}

namespace {

boost::json::array BucketsJson(const Moments* m, size_t n) {
  boost::json::array out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(boost::json::array{m[i].weight, m[i].mean, m[i].var, m[i].last_ms, m[i].seen});
  }
  return out;
}

bool ReadBuckets(const boost::json::value* v, Moments* m, size_t n) {
  if (!v || !v->is_array() || v->as_array().size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    const auto& row = v->as_array()[i];
    if (!row.is_array() || row.as_array().size() != 5) return false;
    const auto& r = row.as_array();
    auto num = [](const boost::json::value& x, double* out) {
      if (x.is_double())
        *out = x.as_double();
      else if (x.is_int64())
        *out = static_cast<double>(x.as_int64());
      else if (x.is_uint64())
        *out = static_cast<double>(x.as_uint64());
      else
        return false;
      return std::isfinite(*out);
    };
    double last = 0, seen = 0;
    if (!num(r[0], &m[i].weight) || !num(r[1], &m[i].mean) || !num(r[2], &m[i].var) ||
        !num(r[3], &last) || !num(r[4], &seen) || m[i].weight < 0 || m[i].var < 0 || seen < 0) {
      return false;
    }
    m[i].last_ms = static_cast<int64_t>(last);
    m[i].seen = static_cast<int64_t>(seen);
  }
  return true;
}

}  // namespace

std::string SeasonalBaseline::ToJson() const {
  boost::json::object o;
  o["v"] = 1;
  o["week"] = BucketsJson(week_.data(), week_.size());
  o["day"] = BucketsJson(day_.data(), day_.size());
  o["outside_share"] = outside_share_;
  o["share_at"] = share_at_ms_;
  return boost::json::serialize(o);
}

Result<SeasonalBaseline> SeasonalBaseline::FromJson(const std::string& json, BaselineOptions o) {
  std::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return Status::InvalidArgument("baseline: not a JSON object");
  SeasonalBaseline b(o);
  const auto& obj = v.as_object();
  if (!ReadBuckets(obj.if_contains("week"), b.week_.data(), b.week_.size()) ||
      !ReadBuckets(obj.if_contains("day"), b.day_.data(), b.day_.size())) {
    return Status::InvalidArgument("baseline: malformed buckets");
  }
  if (const auto* share = obj.if_contains("outside_share"); share && share->is_double()) {
    b.outside_share_ = std::clamp(share->as_double(), 0.0, 1.0);
  }
  if (const auto* at = obj.if_contains("share_at"); at && at->is_int64()) {
    b.share_at_ms_ = at->as_int64();
  }
  return b;
}

}  // namespace drover::alerts
