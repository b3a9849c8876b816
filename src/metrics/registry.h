#pragma once
// The metrics registry: counters, gauges and histograms, with or without labels, that every
// subsystem registers once at start-up and updates lock-free after; `/metrics` renders the
// whole registry in the Prometheus text format (version 0.0.4). Collectors add series computed
// at scrape time from memory (process figures, cached store counts) — never a store read, so
// /metrics answers while the database does not.
//
//   auto& runs = registry.Counter("drover_fleet_reconciles_total", "Reconciles run.");
//   runs.Inc();
//   auto& by_state = registry.GaugeFamily("drover_instances", "Instances by state.", {"state"});
//   by_state.With({"running"}).Set(3);
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace drover::metrics {

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d);
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Fixed upper bounds; an observation counts in the first bucket that holds it.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // The _bucket, _sum and _count lines of `name` with `labels` (`a="x",b="y"` or empty).
  void Render(std::string& out, std::string_view name, std::string_view labels) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micro_{0};
};

// Seconds, from half a millisecond to ten seconds: request and commit latencies.
const std::vector<double>& LatencyBounds();

// `a="x",b="y"` with values escaped as the text format needs (\\, \", \n).
std::string FormatLabels(const std::vector<std::string>& names,
                         const std::vector<std::string>& values);

// A metric with labels: one series per combination of label values, created on first use.
// With() takes a lock; keep the reference it returns on hot paths (it stays valid).
template <class M>
class Family {
 public:
  Family(std::vector<std::string> labels, std::function<std::unique_ptr<M>()> make)
      : labels_(std::move(labels)), make_(std::move(make)) {}
  M& With(std::initializer_list<std::string_view> values) {
    std::vector<std::string> key(values.begin(), values.end());
    std::lock_guard lock(mu_);
    auto& slot = series_[key];
    if (!slot) slot = make_();
    return *slot;
  }
  // Forgets every series (for gauges recomputed as a whole, e.g. instances by state).
  void Clear() {
    std::lock_guard lock(mu_);
    series_.clear();
  }
  // Calls fn(labels, metric) per series, in label order.
  void ForEach(const std::function<void(const std::string&, const M&)>& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [values, m] : series_) fn(FormatLabels(labels_, values), *m);
  }

 private:
  const std::vector<std::string> labels_;
  const std::function<std::unique_ptr<M>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> series_;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registration, once per name (at start-up; the same name again is a bug: it aborts).
  metrics::Counter& Counter(std::string name, std::string help);
  metrics::Gauge& Gauge(std::string name, std::string help);
  metrics::Histogram& Histogram(std::string name, std::string help, std::vector<double> bounds);
  Family<metrics::Counter>& CounterFamily(std::string name, std::string help,
                                          std::vector<std::string> labels);
  Family<metrics::Gauge>& GaugeFamily(std::string name, std::string help,
                                      std::vector<std::string> labels);
  Family<metrics::Histogram>& HistogramFamily(std::string name, std::string help,
                                              std::vector<std::string> labels,
                                              std::vector<double> bounds);
  // Text appended at scrape time, in registration order after the registered metrics: for a
  // subsystem whose series are its own (complete with # HELP and # TYPE lines).
  void AddCollector(std::function<void(std::string&)> collect);

  // The Prometheus text of every metric.
  std::string Render() const;

 private:
  struct Entry;
  void Add(std::unique_ptr<Entry> e);
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<std::function<void(std::string&)>> collectors_;
};

// process_* (CPU seconds, resident and virtual memory, open and max file descriptors, start
// time, threads) from /proc/self, as Prometheus' client libraries name them.
void AddProcessCollector(Registry& r);

}  // namespace drover::metrics
