#include "http/metrics.h"

#include <fmt/format.h>

namespace drover::http {
namespace {
const std::vector<double> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size()]) {
  for (size_t i = 0; i < bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (v <= bounds_[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(static_cast<uint64_t>(v * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out +=
        fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, bounds_[i], cumulative);
  }
  uint64_t count = count_.load(std::memory_order_relaxed);
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, count);
  std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n", name, braces,
                     static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6);
  out += fmt::format("{}_count{} {}\n", name, braces, count);
}

Metrics::RouteStats::RouteStats() : latency(kLatencyBounds) {}

Metrics::Metrics(std::vector<std::pair<std::string, std::string>> routes)
    : commit_latency_(kLatencyBounds), commit_batch_(kBatchBounds) {
  labels_.push_back("route=\"unmatched\"");
  for (const auto& [method, pattern] : routes) {
    labels_.push_back(fmt::format("route=\"{}\",method=\"{}\"", pattern, method));
  }
  for (size_t i = 0; i < labels_.size(); ++i) routes_.push_back(std::make_unique<RouteStats>());
}

void Metrics::ObserveRequest(int route, int status, double seconds) {
  auto& r = *routes_[static_cast<size_t>(route + 1)];
  if (status < 0 || status >= 600) status = 0;
  r.by_status[static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  r.latency.Observe(seconds);
}

void Metrics::ObserveCommit(double seconds, std::size_t batch) {
  commit_latency_.Observe(seconds);
  commit_batch_.Observe(static_cast<double>(batch));
  commits_.fetch_add(1, std::memory_order_relaxed);
  committed_writes_.fetch_add(batch, std::memory_order_relaxed);
}

std::string Metrics::Render() const {
  std::string out;
  out.reserve(16384);
  out += "# HELP drover_http_requests_total HTTP requests by route pattern, method and status.\n";
  out += "# TYPE drover_http_requests_total counter\n";
  for (size_t i = 0; i < labels_.size(); ++i) {
    for (size_t s = 0; s < 600; ++s) {
      uint64_t n = routes_[i]->by_status[s].load(std::memory_order_relaxed);
      if (n) {
        out += fmt::format("drover_http_requests_total{{{},status=\"{}\"}} {}\n", labels_[i], s, n);
      }
    }
  }
  out +=
      "# HELP drover_http_request_duration_seconds Request latency by route pattern and method.\n";
  out += "# TYPE drover_http_request_duration_seconds histogram\n";
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (routes_[i]->latency.count() == 0) continue;
    routes_[i]->latency.Render(out, "drover_http_request_duration_seconds", labels_[i]);
  }
  out += "# HELP drover_http_requests_in_flight Requests being handled now.\n";
  out += "# TYPE drover_http_requests_in_flight gauge\n";
  out += fmt::format("drover_http_requests_in_flight {}\n", in_flight_.load());
  out +=
      "# HELP drover_store_commit_duration_seconds Time from BEGIN to COMMIT of a group commit.\n";
  out += "# TYPE drover_store_commit_duration_seconds histogram\n";
  commit_latency_.Render(out, "drover_store_commit_duration_seconds", "");
  out += "# HELP drover_store_commit_batch_size Writes per committed transaction.\n";
  out += "# TYPE drover_store_commit_batch_size histogram\n";
  commit_batch_.Render(out, "drover_store_commit_batch_size", "");
  out += "# HELP drover_store_commits_total Committed transactions.\n";
  out += "# TYPE drover_store_commits_total counter\n";
  out += fmt::format("drover_store_commits_total {}\n", commits_.load());
  out += "# HELP drover_store_writes_total Writes committed.\n";
  out += "# TYPE drover_store_writes_total counter\n";
  out += fmt::format("drover_store_writes_total {}\n", committed_writes_.load());
  return out;
}

}  // namespace drover::http
