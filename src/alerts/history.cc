#include "alerts/history.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "alerts/series.h"
#include "common/json.h"

namespace drover::alerts {
namespace {

namespace json = boost::json;

// What is kept of which metric: a counter summed by `keep` labels, or a histogram's quantiles.
struct Kept {
  std::string_view metric;
  std::string_view name;
  std::vector<std::string_view> keep;  // labels kept ("class": the status's hundreds)
  bool histogram = false;
};

const std::vector<Kept>& KeptMetrics() {
  static const std::vector<Kept> kept = {
      {"drover_http_requests_total", "api_requests", {"route", "class"}},
      {"drover_http_request_duration_seconds_bucket", "api_latency_us", {}, true},
      {"drover_gateway_requests_total", "gateway_requests", {"route", "class"}},
      {"drover_gateway_request_duration_seconds_bucket", "gateway_latency_us", {"route"}, true},
      {"drover_executions_started_total", "executions_started", {"workflow"}},
      {"drover_executions_ended_total", "executions_ended", {"status"}},
  };
  return kept;
}

const Kept* Find(std::string_view metric) {
  for (const auto& k : KeptMetrics()) {
    if (k.metric == metric) return &k;
  }
  return nullptr;
}

std::string Get(const std::map<std::string, std::string>& labels, const std::string& key) {
  auto it = labels.find(key);
  return it == labels.end() ? "" : it->second;
}

// "2xx" from status="204" (the API's) or code="2xx" (the gateway's).
std::string StatusClass(const std::map<std::string, std::string>& labels) {
  std::string s = Get(labels, "status");
  if (s.size() == 3) return std::string(1, s[0]) + "xx";
  return Get(labels, "code");
}

std::string Identity(const MetricSample& m) {
  std::string id = m.origin + '\x1f' + m.name;
  for (const auto& [k, v] : m.labels) id += '\x1f' + k + '=' + v;
  return id;
}

double Bound(const std::string& le) {
  if (le == "+Inf") return std::numeric_limits<double>::infinity();
  return std::strtod(le.c_str(), nullptr);
}

}  // namespace

std::vector<HistoryPoint> HistoryRecorder::Record(const std::vector<MetricSample>& samples) {
  // (tenant, name, kept labels) -> the minute's count; histograms: -> (le -> count).
  using Labels = std::map<std::string, std::string>;
  using Group = std::tuple<std::string, std::string, Labels>;
  std::map<Group, double> counts;
  std::map<Group, std::map<double, double>> buckets;
  std::map<std::string, double> now;
  for (const auto& m : samples) {
    const Kept* k = Find(m.name);
    if (!k || !std::isfinite(m.value)) continue;
    std::string id = Identity(m);
    now[id] = m.value;
    if (!primed_) continue;
    auto before = last_.find(id);
    double added = 0;
    if (before != last_.end()) {
      added = m.value < before->second ? m.value : m.value - before->second;
    } else if (m.origin.empty()) {
      added = m.value;  // this server's series, first counted in this minute
    }  // else: a server that just began to share its figures: its past is not this minute's
    Labels kept;
    for (auto label : k->keep) {
      std::string key(label);
      kept[key] = key == "class" ? StatusClass(m.labels) : Get(m.labels, key);
    }
    Group g{Get(m.labels, "tenant"), std::string(k->name), std::move(kept)};
    if (k->histogram) {
      buckets[g][Bound(Get(m.labels, "le"))] += added;
    } else {
      counts[g] += added;
    }
  }
  last_ = std::move(now);
  bool first = !primed_;
  primed_ = true;
  std::vector<HistoryPoint> out;
  if (first) return out;
  for (const auto& [g, n] : counts) {
    if (n <= 0) continue;
    const auto& [tenant, name, labels] = g;
    out.push_back({tenant, name, json::serialize(JsonStrings(labels)), std::llround(n)});
  }
  for (const auto& [g, by_bound] : buckets) {
    std::vector<std::pair<double, double>> cumulative(by_bound.begin(), by_bound.end());
    const auto& [tenant, name, labels] = g;
    for (double q : {0.5, 0.95, 0.99}) {
      auto v = HistogramQuantile(q, cumulative);
      if (!v) break;  // nothing observed in the minute
      Labels with = labels;
      with["quantile"] = fmt::format("{}", q);
      out.push_back({tenant, name, json::serialize(JsonStrings(with)), std::llround(*v * 1e6)});
    }
  }
  return out;
}

}  // namespace drover::alerts
