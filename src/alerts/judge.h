#pragma once
// Whether a rule's condition holds (docs/alerts.md): a threshold against the value, or the
// value against the signal's learned band. Pure.
#include <cstdint>

#include "alerts/anomaly.h"
#include "alerts/rule_spec.h"

namespace drover::alerts {

// The baseline options an anomaly condition judges with (its k).
BaselineOptions BaselineFor(const Condition& c);

// Whether `c` holds for `value` at `t_ms`. Anomaly conditions judge by `baseline` (built with
// BaselineFor(c)) and never hold while it has not learned the hour yet.
bool Holds(const Condition& c, double value, int64_t t_ms, const SeasonalBaseline& baseline);

}  // namespace drover::alerts
