#pragma once
// Evaluates alert rules over metric samples (docs/alerts.md): one alert per rule and label
// set, each with its recent samples, its learned baseline (anomaly rules) and its state. Pure:
// rules, samples and the time come in, transitions go out; the caller stores, notifies and
// publishes them. Not thread-safe (one evaluation loop owns it).
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "alerts/anomaly.h"
#include "alerts/exposition.h"
#include "alerts/rule_spec.h"
#include "alerts/series.h"
#include "alerts/state.h"

namespace drover::alerts {

struct Rule {
  std::string tenant, name;
  RuleSpec spec;
};

// The tenant whose rules also see series without a `tenant` label (server-wide figures).
inline constexpr const char* kOperatorTenant = "default";

// A transition of one alert.
struct AlertEvent {
  std::string tenant, rule;
  std::map<std::string, std::string> labels;         // the series' labels and the rule's
  std::map<std::string, std::string> series_labels;  // the series' alone: the alert's key
  Transition transition = Transition::kNone;
  AlertState state;
  Severity severity = Severity::kWarning;
  std::map<std::string, std::string> annotations;  // rendered
  std::vector<std::string> webhooks, topics;       // the rule's notify targets
};

// One alert as it stands (for the API).
struct AlertView {
  std::string tenant, rule;
  std::map<std::string, std::string> labels;
  AlertState state;
};

class Evaluator {
 public:
  // One round at `now_ms`. Series a rule no longer sees, and alerts of rules that are gone,
  // count as a false condition (a firing one resolves) and are then forgotten.
  std::vector<AlertEvent> Evaluate(const std::vector<Rule>& rules,
                                   const std::vector<MetricSample>& samples, int64_t now_ms);

  // Takes up an alert where a previous evaluator left it (`labels`: the series' labels).
  void Restore(const std::string& tenant, const std::string& rule,
               std::map<std::string, std::string> labels, const AlertState& state);

  // Every alert that is pending or firing.
  std::vector<AlertView> Active() const;
  size_t tracked() const { return tracked_.size(); }

 private:
  struct Tracked {
    std::string tenant, rule;
    std::map<std::string, std::string> labels;
    AlertState state;
    std::map<std::string, Series> by_origin;  // the series from each server
    std::set<std::string> origins_seen;       // in this round
    std::unique_ptr<SeasonalBaseline> baseline;
    bool seen = false;  // in this round
  };
  void Step(Tracked& t, const Rule* rule, bool active, double value, int64_t now_ms,
            std::vector<AlertEvent>& out);
  std::map<std::string, Tracked> tracked_;  // by tenant, rule and labels
};

// Whether a rule of `tenant` may see `s`: its own tenant's series, and for the operator's
// tenant also series with no tenant.
bool Visible(const std::string& tenant, const MetricSample& s);

}  // namespace drover::alerts
