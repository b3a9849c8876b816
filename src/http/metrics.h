#pragma once
// Request and store metrics in Prometheus text exposition format. Recording is lock-free
// (relaxed atomics); the route set is fixed at construction. Thread-safe.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace drover::http {

// A fixed-bucket histogram of seconds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Appends the _bucket/_sum/_count lines for `name` with `labels` ("" or `route="x"`).
  void Render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};
};

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

 private:
  struct RouteStats {
    std::array<std::atomic<uint64_t>, 600> by_status{};
    Histogram latency;
    RouteStats();
  };
  std::vector<std::string> labels_;  // `route="...",method="..."`; index 0 is unmatched
  std::vector<std::unique_ptr<RouteStats>> routes_;
  std::atomic<int64_t> in_flight_{0};
  Histogram commit_latency_;
  Histogram commit_batch_;
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> committed_writes_{0};
};

}  // namespace drover::http
