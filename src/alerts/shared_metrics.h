#pragma once
// Per-server signals seen cluster-wide (docs/alerts.md#evaluation): every server publishes
// its counters and histograms (request counts, latencies, sends, executions — what each server
// counts for itself) to the store each round; the leader evaluates them beside its own (each
// server's series transformed, then summed: MetricSample::origin), so a rule on a request rate
// sees the whole cluster's. Gauges are not shared:
// the ones read from the store (queue depths, phases) are the same on every server already.
#include <string>
#include <string_view>

namespace drover::alerts {

// The sample lines of `exposition` a server shares: counters (`_total`) and histogram series
// (`_bucket`, `_sum`, `_count`), not process_* figures; comments dropped.
std::string SharedPart(std::string_view exposition);

}  // namespace drover::alerts
