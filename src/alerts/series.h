#pragma once
// A signal's recent samples and the transforms over them (docs/alerts.md): the value, a
// counter's rate, a gauge's delta. Pure: samples carry their own times (Unix ms).
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "alerts/rule_spec.h"

namespace drover::alerts {

struct Sample {
  int64_t t_ms = 0;
  double value = 0;
};

class Series {
 public:
  // Keeps samples no older than `keep_ms` before the newest (the rule's window).
  explicit Series(int64_t keep_ms) : keep_ms_(keep_ms) {}

  // Adds a sample; one older than the newest is ignored (time only moves forward).
  void Add(int64_t t_ms, double value);

  // The transform at the newest sample; nullopt when there is nothing to say yet (no sample;
  // rate and delta need two samples at least a second apart).
  std::optional<double> Evaluate(Transform t) const;

  size_t size() const { return samples_.size(); }
  void set_keep(int64_t keep_ms) { keep_ms_ = keep_ms; }

 private:
  int64_t keep_ms_;
  std::deque<Sample> samples_;
};

// The q-quantile of a histogram given as (upper bound, cumulative count) buckets, the last one
// +Inf, as Prometheus's histogram_quantile computes it: linear within the bucket the rank falls
// in; the highest finite bound when it falls in +Inf. nullopt without observations or buckets.
std::optional<double> HistogramQuantile(double q, std::vector<std::pair<double, double>> buckets);

}  // namespace drover::alerts
