#include "alerts/series.h"

#include <algorithm>
#include <cmath>

namespace drover::alerts {

void Series::Add(int64_t t_ms, double value) {
  if (!std::isfinite(value)) return;
  if (!samples_.empty() && t_ms <= samples_.back().t_ms) return;
  samples_.push_back({t_ms, value});
  while (samples_.size() > 2 && samples_.front().t_ms < t_ms - keep_ms_) samples_.pop_front();
}

std::optional<double> Series::Evaluate(Transform t) const {
  if (samples_.empty()) return std::nullopt;
  if (t == Transform::kValue) return samples_.back().value;
  const Sample& first = samples_.front();
  const Sample& last = samples_.back();
  if (last.t_ms - first.t_ms < 1000) return std::nullopt;
  if (t == Transform::kDelta) return last.value - first.value;
  // A counter's increase: a drop means it restarted from zero (the process restarted), so
  // the value after the drop is all increase, as Prometheus's rate() counts it.
  double increase = 0;
  for (size_t i = 1; i < samples_.size(); ++i) {
    double d = samples_[i].value - samples_[i - 1].value;
    increase += d >= 0 ? d : samples_[i].value;
  }
  return increase * 1000.0 / static_cast<double>(last.t_ms - first.t_ms);
}

std::optional<double> HistogramQuantile(double q, std::vector<std::pair<double, double>> buckets) {
  if (buckets.empty()) return std::nullopt;
  std::sort(buckets.begin(), buckets.end());
  // Counts are cumulative; rates summed over servers may wobble: keep them non-decreasing.
  for (size_t i = 1; i < buckets.size(); ++i) {
    buckets[i].second = std::max(buckets[i].second, buckets[i - 1].second);
  }
  double total = buckets.back().second;
  if (!(total > 0) || !std::isinf(buckets.back().first)) return std::nullopt;
  double rank = q * total;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i].second < rank) continue;
    if (std::isinf(buckets[i].first)) {
      return i > 0 ? buckets[i - 1].first : 0.0;  // above every finite bound
    }
    double lower = i > 0 ? buckets[i - 1].first : 0.0;
    double below = i > 0 ? buckets[i - 1].second : 0.0;
    double in = buckets[i].second - below;
    if (in <= 0) return buckets[i].first;
    return lower + (buckets[i].first - lower) * (rank - below) / in;
  }
  return buckets.back().first;
}

}  // namespace drover::alerts
