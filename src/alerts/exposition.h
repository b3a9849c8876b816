#pragma once
// Reads the Prometheus text format (as /metrics renders it) back into samples: what alert
// rules are evaluated over, from every registered metric and collector alike. Pure.
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace drover::alerts {

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  // The server it comes from ("" this one): the same series from several servers is summed
  // after each one's transform (alerts/shared_metrics.h).
  std::string origin{};
};

// Every sample line of `text` (comments, blank and malformed lines skipped; NaN and ±Inf as
// the format spells them).
std::vector<MetricSample> ParseExposition(std::string_view text);

}  // namespace drover::alerts
