#pragma once
// Request and store metrics in Prometheus text exposition format. Recording is lock-free
// (relaxed atomics, one slot per route and status: no label lookup on the request path); the
// route set is fixed at construction. Register() adds them to the server's registry.
// Thread-safe.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metrics/registry.h"

namespace drover::http {

class Metrics {
 public:
  // `routes` are the routes' (method, pattern), in router order; index -1 records unmatched
  // requests. Series are labelled with both: a pattern served for several methods has one
  // series per method (Prometheus refuses a scrape with the same labels twice).
  explicit Metrics(std::vector<std::pair<std::string, std::string>> routes);
  void ObserveRequest(int route, int status, double seconds);
  void AddInFlight(int delta) { in_flight_.fetch_add(delta, std::memory_order_relaxed); }
  void ObserveCommit(double seconds, std::size_t batch);
  std::string Render() const;
  // Renders into `registry`'s /metrics from now on. REQUIRES: this outlives the registry's use.
  void Register(metrics::Registry& registry) const;

 private:
  struct RouteStats {
    std::array<std::atomic<uint64_t>, 600> by_status{};
    metrics::Histogram latency;
    RouteStats();
  };
  std::vector<std::string> labels_;  // `route="...",method="..."`; index 0 is unmatched
  std::vector<std::unique_ptr<RouteStats>> routes_;
  std::atomic<int64_t> in_flight_{0};
  metrics::Histogram commit_latency_;
  metrics::Histogram commit_batch_;
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> committed_writes_{0};
};

}  // namespace drover::http
