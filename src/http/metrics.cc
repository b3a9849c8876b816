#include "http/metrics.h"

#include <fmt/format.h>

namespace drover::http {
namespace {
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
}  // namespace

Metrics::RouteStats::RouteStats() : latency(metrics::LatencyBounds()) {}

Metrics::Metrics(std::vector<std::pair<std::string, std::string>> routes)
    : commit_latency_(metrics::LatencyBounds()), commit_batch_(kBatchBounds) {
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

void Metrics::Register(metrics::Registry& registry) const {
  registry.AddCollector([this](std::string& out) { out += Render(); });
}

}  // namespace drover::http
