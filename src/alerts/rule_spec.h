#pragma once
// An alert rule's spec (docs/alerts.md): a signal (a metric selector), a transform, a condition,
// `for`, severity, labels, annotations and where to notify. Parsed from the JSON or YAML
// document users send, every problem a field error.
#include <boost/json/fwd.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alerts/state.h"
#include "common/status.h"

namespace drover::alerts {

// One label matcher of a selector: `name="v"`, `!=`, `=~` (glob), `!~`.
struct Matcher {
  enum Kind { kEq, kNe, kGlob, kNotGlob } kind = kEq;
  std::string label;
  std::string value;
  bool Matches(std::string_view v) const;
};

// `metric{label="value",...}`.
struct Selector {
  std::string metric;
  std::vector<Matcher> matchers;
  // Whether a series with these labels is selected (a missing label reads as "").
  bool Matches(const std::map<std::string, std::string>& labels) const;
  std::string ToString() const;
};

// Parses a selector; InvalidArgument with where and why.
Result<Selector> ParseSelector(std::string_view text);

// `*` any run of characters, `?` exactly one; everything else literal. Time linear in
// |text| × |pattern| at worst (no backtracking blow-up).
bool GlobMatch(std::string_view pattern, std::string_view text);

// value, rate (of a counter, per second), delta (of a gauge over the window), or a quantile of a
// histogram's observations over the window (the signal names the histogram; its _bucket series
// are read, as PromQL's histogram_quantile(q, rate(x_bucket[window])) does).
enum class Transform { kValue, kRate, kDelta, kP50, kP90, kP95, kP99 };
std::string_view TransformName(Transform t);
// The quantile a transform asks for (0.99 for p99), or nullopt for the others.
std::optional<double> QuantileOf(Transform t);

enum class Severity { kCritical, kWarning, kInfo };
std::string_view SeverityName(Severity s);

enum class Direction { kBoth, kUp, kDown };

struct Condition {
  enum Kind { kThreshold, kAnomaly } kind = kThreshold;
  Op op = Op::kGt;  // threshold
  double value = 0;
  double k = 4;  // anomaly: band half-width in spreads
  Direction direction = Direction::kBoth;
};

struct RuleSpec {
  Selector signal;
  Transform transform = Transform::kValue;
  int64_t window_ms = 5 * 60'000;
  Condition condition;
  int64_t for_ms = 0;
  Severity severity = Severity::kWarning;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> webhooks;
  std::vector<std::string> topics;
  bool enabled = true;
};

// Parses a document: {kind: Alert, name, spec: {...}} or a bare spec; Validation with every
// field error.
Result<RuleSpec> ParseRuleDocument(const boost::json::value& doc, std::string_view name);

// What an annotation's placeholders are filled with.
struct TemplateContext {
  std::string_view name;
  double value = 0;
  std::string_view severity;
  const std::map<std::string, std::string>* labels = nullptr;
};

// Checks a template's placeholders: InvalidArgument naming the first unknown one.
Status CheckTemplate(std::string_view text);
// Fills `text`'s placeholders ({{name}}, {{value}}, {{severity}}, {{labels.X}}).
std::string RenderTemplate(std::string_view text, const TemplateContext& c);

}  // namespace drover::alerts
