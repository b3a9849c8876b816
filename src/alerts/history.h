#pragma once
// A day of the server's own metrics for the dashboard's charts (docs/dashboard.md#charts): each
// minute the alert runner, on the leader and over every server's samples, turns a few counters
// into what the minute added (by a few labels) and a few histograms into the minute's
// quantiles. What is kept is named here, not configured: it is what the pages draw. Pure.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "alerts/exposition.h"

namespace drover::alerts {

struct HistoryPoint {
  std::string tenant;  // "" for the server's own series (API requests)
  std::string name;    // api_requests, api_latency_us, gateway_requests, ...
  std::string labels;  // a JSON object, keys sorted: {"route":"/v1/status","class":"2xx"}
  int64_t value = 0;   // a count in the minute, or microseconds for a quantile
};

class HistoryRecorder {
 public:
  // The points of the time since the last call, from every server's cumulative samples (each
  // with its origin). The first call only remembers: it has nothing to subtract from. A
  // counter lower than before was reset (a restarted server) and counts from zero. Minutes
  // with nothing in them give no point.
  std::vector<HistoryPoint> Record(const std::vector<MetricSample>& samples);

 private:
  std::map<std::string, double> last_;  // by origin, name and labels
  bool primed_ = false;
};

}  // namespace drover::alerts
