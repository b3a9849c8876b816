#pragma once
// Runs the alert rules (docs/alerts.md) on the server holding the leader lease: every interval
// it reads every tenant's rules, this server's metrics, evaluates them, and writes each
// transition — the alert's state, its history, a change record and the notifications it makes
// — in one transaction; then it delivers the notifications that are due (webhooks, topics),
// retrying failed ones with backoff. Another server reads the states from the store.
// Thread-safe.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "alerts/alerts.h"
#include "alerts/state.h"
#include "common/page.h"
#include "coord/coordinator.h"
#include "store/store.h"

namespace drover::alerts {

struct RunnerOptions {
  std::chrono::milliseconds interval{15000};
  // This server's id among those sharing the database: its counters are published under it
  // for the leader (alerts/shared_metrics.h).
  std::string server_id{};
  // How often the metric history is recorded (alerts/history.h): a point per series per step.
  std::chrono::milliseconds history_step{60000};
};

// A point of the metric history (alerts/history.h).
struct MetricPoint {
  std::string name;
  std::string labels;  // a JSON object
  int64_t at_ms = 0;
  int64_t value = 0;
};

// An alert (one rule and label set) as stored.
struct StoredAlert {
  std::map<std::string, std::string> labels;
  std::string phase;  // pending | firing
  double value = 0;
  int64_t active_since_ms = 0, fired_at_ms = 0, updated_at_ms = 0;
};

// A rule's silence.
struct Silence {
  int64_t until_ms = 0;
  std::string comment, created_by;
  int64_t created_at_ms = 0;
};

// One transition in an alert's history.
struct HistoryEntry {
  int64_t seq = 0;
  int64_t at_ms = 0;
  std::map<std::string, std::string> labels;
  std::string transition;  // pending | firing | resolved | cleared
  double value = 0;
  std::map<std::string, std::string> annotations;
};

// Publishes `body` to a topic of `tenant` (the app wires it to the topics): OK once published.
using PublishFn = std::function<Status(const std::string& tenant, const std::string& topic,
                                       const std::string& body)>;

class AlertRunner {
 public:
  AlertRunner(AlertService& alerts, store::Store& store, coord::Coordinator& coord,
              std::function<std::string()> metrics_text, PublishFn publish, RunnerOptions options);
  ~AlertRunner();  // Stop()
  void Start();
  void Stop();

  // The pending and firing alerts of a rule.
  Result<std::vector<StoredAlert>> Active(const std::string& tenant, const std::string& rule);
  // A rule's transitions, newest first.
  Result<Page<HistoryEntry>> History(const std::string& tenant, const std::string& rule,
                                     const std::string& cursor, int limit);

  // The metric history of `tenant` and of the server itself since `since_ms` (of one series
  // name when `name` is not empty), by name, labels and time; at most `max` points.
  Result<std::vector<MetricPoint>> MetricHistory(const std::string& tenant, int64_t since_ms,
                                                 const std::string& name, int64_t max);
  std::chrono::milliseconds history_step() const;

  // Silences the rule's notifications for `for_ms` from now (replacing a silence it has);
  // NotFound when there is no such rule.
  void Silence(std::string tenant, std::string rule, int64_t for_ms, std::string comment,
               std::string created_by, std::function<void(Result<alerts::Silence>)> done);
  // Lifts the rule's silence: NotFound when it has none.
  void Unsilence(std::string tenant, std::string rule, std::function<void(Status)> done);
  // The rule's silence when it has one that has not expired.
  Result<std::optional<alerts::Silence>> SilenceOf(const std::string& tenant,
                                                   const std::string& rule);

  // One evaluation now, when this server leads (tests and the loop).
  void EvaluateOnce();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::alerts
