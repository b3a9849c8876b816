#include "alerts/evaluator.h"

#include "alerts/judge.h"

namespace drover::alerts {
namespace {

std::string Key(const std::string& tenant, const std::string& rule,
                const std::map<std::string, std::string>& labels) {
  std::string k = tenant;
  k += '\0';
  k += rule;
  for (const auto& [name, value] : labels) {
    k += '\0';
    k += name;
    k += '=';
    k += value;
  }
  return k;
}

}  // namespace

bool Visible(const std::string& tenant, const MetricSample& s) {
  auto it = s.labels.find("tenant");
  if (it == s.labels.end()) return tenant == kOperatorTenant;
  return it->second == tenant;
}

void Evaluator::Step(Tracked& t, const Rule* rule, bool active, double value, int64_t now_ms,
                     std::vector<AlertEvent>& out) {
  int64_t for_ms = rule ? rule->spec.for_ms : 0;
  Transition tr = alerts::Step(t.state, active, value, now_ms, for_ms);
  if (tr == Transition::kNone) return;
  AlertEvent e;
  e.tenant = t.tenant;
  e.rule = t.rule;
  e.labels = t.labels;
  e.series_labels = t.labels;
  e.transition = tr;
  e.state = t.state;
  if (rule) {
    e.severity = rule->spec.severity;
    e.webhooks = rule->spec.webhooks;
    e.topics = rule->spec.topics;
    for (const auto& [k, v] : rule->spec.labels) e.labels[k] = v;
    TemplateContext c{rule->name, value, SeverityName(rule->spec.severity), &e.labels};
    for (const auto& [k, text] : rule->spec.annotations) e.annotations[k] = RenderTemplate(text, c);
  }
  out.push_back(std::move(e));
}

std::vector<AlertEvent> Evaluator::Evaluate(const std::vector<Rule>& rules,
                                            const std::vector<MetricSample>& samples,
                                            int64_t now_ms) {
  std::vector<AlertEvent> out;
  for (auto& [_, t] : tracked_) t.seen = false;
  std::map<std::string, const Rule*> by_key;  // tenant \0 rule -> rule
  for (const auto& rule : rules) {
    if (!rule.spec.enabled) continue;
    by_key[rule.tenant + '\0' + rule.name] = &rule;
    for (const auto& s : samples) {
      if (s.name != rule.spec.signal.metric || !Visible(rule.tenant, s) ||
          !rule.spec.signal.Matches(s.labels)) {
        continue;
      }
      auto [it, fresh] = tracked_.try_emplace(Key(rule.tenant, rule.name, s.labels));
      Tracked& t = it->second;
      if (fresh) {
        t.tenant = rule.tenant;
        t.rule = rule.name;
        t.labels = s.labels;
      }
      if (t.seen) continue;  // the same series twice in one exposition: the first counts
      t.seen = true;
      t.series.set_keep(rule.spec.window_ms);  // the rule may have changed its window
      t.series.Add(now_ms, s.value);
      auto v = t.series.Evaluate(rule.spec.transform);
      if (!v) continue;
      bool anomaly = rule.spec.condition.kind == Condition::kAnomaly;
      if (anomaly && !t.baseline) {
        t.baseline = std::make_unique<SeasonalBaseline>(BaselineFor(rule.spec.condition));
      }
      static const SeasonalBaseline kNone;
      bool holds = Holds(rule.spec.condition, *v, now_ms, anomaly ? *t.baseline : kNone);
      if (anomaly) t.baseline->Observe(now_ms, *v);
      Step(t, &rule, holds, *v, now_ms, out);
    }
  }
  // What was not seen this round: its condition no longer holds; once inactive, forgotten
  // (a series that comes back starts afresh, as in Prometheus).
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    Tracked& t = it->second;
    if (!t.seen) {
      auto r = by_key.find(t.tenant + '\0' + t.rule);
      Step(t, r == by_key.end() ? nullptr : r->second, false, t.state.value, now_ms, out);
      if (t.state.phase == Phase::kInactive) {
        it = tracked_.erase(it);
        continue;
      }
    }
    ++it;
  }
  return out;
}

void Evaluator::Restore(const std::string& tenant, const std::string& rule,
                        std::map<std::string, std::string> labels, const AlertState& state) {
  Tracked& t = tracked_[Key(tenant, rule, labels)];
  t.tenant = tenant;
  t.rule = rule;
  t.labels = std::move(labels);
  t.state = state;
}

std::vector<AlertView> Evaluator::Active() const {
  std::vector<AlertView> out;
  for (const auto& [_, t] : tracked_) {
    if (t.state.phase != Phase::kInactive) out.push_back({t.tenant, t.rule, t.labels, t.state});
  }
  return out;
}

}  // namespace drover::alerts
