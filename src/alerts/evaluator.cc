#include "alerts/evaluator.h"

#include <cstdlib>
#include <limits>
#include <unordered_map>

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
  // The samples by name, and by name and each label's value: a rule looks only at those its
  // name (and its first `label="value"` matcher) can select, not at every series.
  std::unordered_map<std::string, std::vector<const MetricSample*>> index;
  for (const auto& s : samples) {
    index[s.name].push_back(&s);
    for (const auto& [k, v] : s.labels) index[s.name + '\0' + k + '\0' + v].push_back(&s);
  }
  static const std::vector<const MetricSample*> kNoSamples;
  auto candidates = [&](const Selector& sel) -> const std::vector<const MetricSample*>& {
    std::string key = sel.metric;
    for (const auto& m : sel.matchers) {
      if (m.kind == Matcher::kEq && !m.value.empty()) {
        key += '\0' + m.label + '\0' + m.value;
        break;
      }
    }
    auto it = index.find(key);
    return it == index.end() ? kNoSamples : it->second;
  };
  for (const auto& rule : rules) {
    if (!rule.spec.enabled) continue;
    by_key[rule.tenant + '\0' + rule.name] = &rule;
    // A quantile reads the histogram's buckets: one alert per label set without `le`, one
    // series per server and bucket.
    const std::optional<double> quantile = QuantileOf(rule.spec.transform);
    Selector selector = rule.spec.signal;
    if (quantile) selector.metric += "_bucket";
    std::vector<Tracked*> touched;
    for (const MetricSample* sp : candidates(selector)) {
      const MetricSample& s = *sp;
      if (!Visible(rule.tenant, s) || !rule.spec.signal.Matches(s.labels)) continue;
      std::string part = s.origin;
      const std::map<std::string, std::string>* labels = &s.labels;
      std::map<std::string, std::string> without_le;
      if (quantile) {
        auto le = s.labels.find("le");
        if (le == s.labels.end()) continue;
        part += '\0' + le->second;
        without_le = s.labels;
        without_le.erase("le");
        labels = &without_le;
      }
      auto [it, fresh] = tracked_.try_emplace(Key(rule.tenant, rule.name, *labels));
      Tracked& t = it->second;
      if (fresh) {
        t.tenant = rule.tenant;
        t.rule = rule.name;
        t.labels = *labels;
      }
      if (!t.seen) {
        t.seen = true;
        t.origins_seen.clear();
        touched.push_back(&t);
      }
      // The same series twice from one server in one round: the first counts.
      if (!t.origins_seen.insert(part).second) continue;
      Series& series = t.by_origin.try_emplace(part, rule.spec.window_ms).first->second;
      series.set_keep(rule.spec.window_ms);  // the rule may have changed its window
      series.Add(now_ms, s.value);
    }
    for (Tracked* tp : touched) {
      Tracked& t = *tp;
      // A server that stopped reporting is dropped, not read as its counters falling to 0
      // (which a rate would take for a reset).
      for (auto it = t.by_origin.begin(); it != t.by_origin.end();) {
        it = t.origins_seen.count(it->first) ? std::next(it) : t.by_origin.erase(it);
      }
      // The cluster's figure: each server's transform, summed; for a quantile, each bucket's
      // rate summed over the servers, then the quantile of those.
      std::optional<double> v;
      if (quantile) {
        std::map<double, double> rates;  // upper bound -> observations per second
        for (const auto& [part, series] : t.by_origin) {
          std::string le = part.substr(part.find('\0') + 1);
          char* end = nullptr;
          double bound = le == "+Inf" ? std::numeric_limits<double>::infinity()
                                      : std::strtod(le.c_str(), &end);
          if (le != "+Inf" && (end == le.c_str() || *end != '\0')) continue;
          if (auto r = series.Evaluate(Transform::kRate)) rates[bound] += *r;
        }
        v = HistogramQuantile(*quantile, {rates.begin(), rates.end()});
      } else {
        for (const auto& [origin, series] : t.by_origin) {
          if (auto x = series.Evaluate(rule.spec.transform)) v = v.value_or(0) + *x;
        }
      }
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
