#include "alerts/series.h"

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

}  // namespace drover::alerts
