#include "alerts/judge.h"

namespace drover::alerts {

BaselineOptions BaselineFor(const Condition& c) {
  BaselineOptions o;
  o.k = c.k;
  return o;
}

bool Holds(const Condition& c, double value, int64_t t_ms, const SeasonalBaseline& baseline) {
  if (c.kind == Condition::kThreshold) return Compare(c.op, value, c.value);
  Band b = baseline.BandAt(t_ms);
  if (!b.learned) return false;
  bool high = value > b.high, low = value < b.low;
  switch (c.direction) {
    case Direction::kUp:
      return high;
    case Direction::kDown:
      return low;
    case Direction::kBoth:
      return high || low;
  }
  return false;
}

}  // namespace drover::alerts
