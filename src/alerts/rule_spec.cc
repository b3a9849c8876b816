#include "alerts/rule_spec.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <cmath>

#include "common/json.h"
#include "common/names.h"

namespace drover::alerts {
namespace {

namespace json = boost::json;

constexpr size_t kMaxSelector = 1024;
constexpr size_t kMaxMatchers = 16;
constexpr size_t kMaxLabels = 32;
constexpr size_t kMaxText = 2048;  // a label value or an annotation
constexpr size_t kMaxTargets = 8;  // webhooks, topics
constexpr int64_t kMaxWindowMs = 24LL * 3600 * 1000;
constexpr int64_t kMaxForMs = 7LL * 24 * 3600 * 1000;

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

// A label name as Prometheus allows: [a-zA-Z_][a-zA-Z0-9_]*.
bool IsLabelName(std::string_view s) {
  if (s.empty() || s.size() > 128 || !IsNameStart(s[0])) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

// A selector being read, left to right, once.
class SelectorReader {
 public:
  explicit SelectorReader(std::string_view t) : t_(t) {}

  Result<Selector> Read() {
    Selector s;
    SkipSpace();
    size_t start = at_;
    while (at_ < t_.size() && (IsNameChar(t_[at_]) || t_[at_] == ':')) ++at_;
    s.metric = std::string(t_.substr(start, at_ - start));
    if (s.metric.empty() || !(IsNameStart(s.metric[0]) || s.metric[0] == ':')) {
      return Fail("must start with a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
    }
    SkipSpace();
    if (at_ < t_.size() && t_[at_] == '{') {
      ++at_;
      for (;;) {
        SkipSpace();
        if (at_ < t_.size() && t_[at_] == '}') {
          ++at_;
          break;
        }
        if (s.matchers.size() == kMaxMatchers) {
          return Fail(fmt::format("has more than {} label matchers", kMaxMatchers));
        }
        auto m = ReadMatcher();
        if (!m.ok()) return m.status();
        s.matchers.push_back(std::move(*m));
        SkipSpace();
        if (at_ < t_.size() && t_[at_] == ',') {
          ++at_;
        } else if (at_ >= t_.size() || t_[at_] != '}') {
          return Fail("expected ',' or '}' after a label matcher");
        }
      }
    }
    SkipSpace();
    if (at_ != t_.size()) return Fail("has text after the selector");
    return s;
  }

 private:
  Result<Matcher> ReadMatcher() {
    Matcher m;
    size_t start = at_;
    while (at_ < t_.size() && IsNameChar(t_[at_])) ++at_;
    m.label = std::string(t_.substr(start, at_ - start));
    if (!IsLabelName(m.label)) return Fail("expected a label name");
    SkipSpace();
    std::string_view rest = t_.substr(at_);
    if (rest.starts_with("=~")) {
      m.kind = Matcher::kGlob;
      at_ += 2;
    } else if (rest.starts_with("!~")) {
      m.kind = Matcher::kNotGlob;
      at_ += 2;
    } else if (rest.starts_with("!=")) {
      m.kind = Matcher::kNe;
      at_ += 2;
    } else if (rest.starts_with("=")) {
      m.kind = Matcher::kEq;
      at_ += 1;
    } else {
      return Fail("expected =, !=, =~ or !~ after '" + m.label + "'");
    }
    SkipSpace();
    if (at_ >= t_.size() || t_[at_] != '"') return Fail("expected a double-quoted value");
    ++at_;
    for (;;) {
      if (at_ >= t_.size()) return Fail("has an unterminated string");
      char c = t_[at_++];
      if (c == '"') break;
      if (c == '\\') {
        if (at_ >= t_.size()) return Fail("has an unterminated string");
        char e = t_[at_++];
        if (e == 'n') {
          m.value += '\n';
        } else if (e == '\\' || e == '"') {
          m.value += e;
        } else {
          return Fail("has an unknown escape (\\\\, \\\" and \\n are known)");
        }
        continue;
      }
      m.value += c;
    }
    return m;
  }

  void SkipSpace() {
    while (at_ < t_.size() && (t_[at_] == ' ' || t_[at_] == '\t')) ++at_;
  }
  Status Fail(std::string why) const {
    return Status::InvalidArgument(fmt::format("{} (at character {})", why, at_ + 1));
  }

  std::string_view t_;
  size_t at_ = 0;
};

Result<Condition> ParseThreshold(std::string_view text) {
  Condition c;
  c.kind = Condition::kThreshold;
  auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  struct {
    std::string_view text;
    Op op;
  } ops[] = {{">=", Op::kGe}, {"<=", Op::kLe}, {"==", Op::kEq},
             {"!=", Op::kNe}, {">", Op::kGt},  {"<", Op::kLt}};
  bool found = false;
  for (const auto& o : ops) {
    if (text.starts_with(o.text)) {
      c.op = o.op;
      text.remove_prefix(o.text.size());
      found = true;
      break;
    }
  }
  if (!found)
    return Status::InvalidArgument(
        "must be an operator (>, >=, <, <=, ==, !=) and a number, e.g. \"> 0\"");
  text = trim(text);
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), c.value);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() ||
      !std::isfinite(c.value)) {
    return Status::InvalidArgument("must be an operator and a number, e.g. \"> 0\"");
  }
  return c;
}

void ReadCondition(JsonDecoder& d, RuleSpec& s) {
  const json::value* v = d.Raw("condition", true);
  if (!v) return;
  const char* shape = "must be {threshold: \"> 0\"} or {anomaly: {k, direction}}";
  if (!v->is_object() || v->as_object().size() != 1) return d.AddError("condition", shape);
  const auto& o = v->as_object();
  if (const auto* t = o.if_contains("threshold")) {
    if (!t->is_string()) return d.AddError("condition.threshold", "must be a string like \"> 0\"");
    auto c = ParseThreshold(t->as_string());
    if (!c.ok()) return d.AddError("condition.threshold", c.status().message());
    s.condition = *c;
    return;
  }
  const auto* a = o.if_contains("anomaly");
  if (!a) return d.AddError("condition", shape);
  s.condition.kind = Condition::kAnomaly;
  if (a->is_null()) return;
  if (!a->is_object()) return d.AddError("condition.anomaly", "must be an object {k, direction}");
  for (const auto& [key, value] : a->as_object()) {
    if (key == "k") {
      if (!value.is_number() || value.to_number<double>() < 1 || value.to_number<double>() > 20) {
        d.AddError("condition.anomaly.k", "must be a number of spreads from 1 to 20");
      } else {
        s.condition.k = value.to_number<double>();
      }
    } else if (key == "direction") {
      std::string_view dir = value.is_string() ? std::string_view(value.as_string()) : "";
      if (dir == "both") {
        s.condition.direction = Direction::kBoth;
      } else if (dir == "up") {
        s.condition.direction = Direction::kUp;
      } else if (dir == "down") {
        s.condition.direction = Direction::kDown;
      } else {
        d.AddError("condition.anomaly.direction", "must be both, up or down");
      }
    } else {
      d.AddError("condition.anomaly", fmt::format("has an unknown field '{}'", std::string(key)));
    }
  }
}

// A string map field (labels, annotations): names as labels, values bounded.
void ReadStringMap(JsonDecoder& d, std::string_view field, bool templates,
                   std::map<std::string, std::string>& out) {
  const json::value* v = d.Raw(field, false);
  if (!v || v->is_null()) return;
  std::string f(field);
  if (!v->is_object()) return d.AddError(field, "must be an object of names to strings");
  if (v->as_object().size() > kMaxLabels) {
    return d.AddError(field, fmt::format("must have at most {} entries", kMaxLabels));
  }
  for (const auto& [key, value] : v->as_object()) {
    std::string k(key);
    if (!IsLabelName(k)) {
      d.AddError(field, fmt::format("'{}' is not a name ([a-zA-Z_][a-zA-Z0-9_]*)", k));
      continue;
    }
    if (!value.is_string() || value.as_string().size() > kMaxText) {
      d.AddError(f + "." + k, fmt::format("must be a string of at most {} bytes", kMaxText));
      continue;
    }
    std::string text(value.as_string());
    if (templates) {
      if (Status t = CheckTemplate(text); !t.ok()) {
        d.AddError(f + "." + k, t.message());
        continue;
      }
    }
    out[k] = std::move(text);
  }
}

bool IsWebhookUrl(std::string_view u) {
  // https:// waits for the HTTP client to speak TLS.
  if (!u.starts_with("http://") || u.size() > kMaxText) return false;
  std::string_view rest = u.substr(u.find("://") + 3);
  if (rest.empty() || rest[0] == '/') return false;
  for (char c : u) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

void ReadNotify(JsonDecoder& d, RuleSpec& s) {
  const json::value* v = d.Raw("notify", false);
  if (!v || v->is_null()) return;
  if (!v->is_object()) return d.AddError("notify", "must be {webhooks: [URL], topics: [NAME]}");
  for (const auto& [key, value] : v->as_object()) {
    bool webhooks = key == "webhooks";
    if (!webhooks && key != "topics") {
      d.AddError("notify", fmt::format("has an unknown field '{}'", std::string(key)));
      continue;
    }
    std::string field = "notify." + std::string(key);
    if (!value.is_array() || value.as_array().size() > kMaxTargets) {
      d.AddError(field, fmt::format("must be a list of at most {}", kMaxTargets));
      continue;
    }
    const auto& a = value.as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      std::string item = fmt::format("{}[{}]", field, i);
      std::string_view text = a[i].is_string() ? std::string_view(a[i].as_string()) : "";
      if (webhooks) {
        if (!IsWebhookUrl(text)) {
          d.AddError(item, "must be an http:// URL (https is not supported yet)");
        } else {
          s.webhooks.emplace_back(text);
        }
      } else if (!IsValidName(text)) {
        d.AddError(item, std::string(kNameRule));
      } else {
        s.topics.emplace_back(text);
      }
    }
  }
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // The classic two-pointer match: on a mismatch, go back to just after the last '*' and let
  // it swallow one more character. Each '*' restarts at most |text| times.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool Matcher::Matches(std::string_view v) const {
  switch (kind) {
    case kEq:
      return v == value;
    case kNe:
      return v != value;
    case kGlob:
      return GlobMatch(value, v);
    case kNotGlob:
      return !GlobMatch(value, v);
  }
  return false;
}

bool Selector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& m : matchers) {
    auto it = labels.find(m.label);
    if (!m.Matches(it == labels.end() ? std::string_view() : std::string_view(it->second))) {
      return false;
    }
  }
  return true;
}

std::string Selector::ToString() const {
  std::string out = metric;
  if (matchers.empty()) return out;
  out += '{';
  for (size_t i = 0; i < matchers.size(); ++i) {
    const auto& m = matchers[i];
    if (i) out += ',';
    out += m.label;
    out += m.kind == Matcher::kEq     ? "="
           : m.kind == Matcher::kNe   ? "!="
           : m.kind == Matcher::kGlob ? "=~"
                                      : "!~";
    out += '"';
    for (char c : m.value) {
      if (c == '"' || c == '\\') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

Result<Selector> ParseSelector(std::string_view text) {
  if (text.size() > kMaxSelector) {
    return Status::InvalidArgument(fmt::format("must be at most {} characters", kMaxSelector));
  }
  return SelectorReader(text).Read();
}

std::string_view TransformName(Transform t) {
  switch (t) {
    case Transform::kValue:
      return "value";
    case Transform::kRate:
      return "rate";
    case Transform::kDelta:
      return "delta";
    case Transform::kP50:
      return "p50";
    case Transform::kP90:
      return "p90";
    case Transform::kP95:
      return "p95";
    case Transform::kP99:
      return "p99";
  }
  return "value";
}

std::optional<double> QuantileOf(Transform t) {
  switch (t) {
    case Transform::kP50:
      return 0.5;
    case Transform::kP90:
      return 0.9;
    case Transform::kP95:
      return 0.95;
    case Transform::kP99:
      return 0.99;
    default:
      return std::nullopt;
  }
}

std::string_view SeverityName(Severity s) {
  switch (s) {
    case Severity::kCritical:
      return "critical";
    case Severity::kWarning:
      return "warning";
    case Severity::kInfo:
      return "info";
  }
  return "warning";
}

Status CheckTemplate(std::string_view text) {
  size_t at = 0;
  while ((at = text.find("{{", at)) != std::string_view::npos) {
    size_t end = text.find("}}", at + 2);
    if (end == std::string_view::npos) return Status::InvalidArgument("has a '{{' without '}}'");
    std::string_view key = text.substr(at + 2, end - at - 2);
    while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    bool known = key == "name" || key == "value" || key == "severity" ||
                 (key.starts_with("labels.") && IsLabelName(key.substr(7)));
    if (!known) {
      return Status::InvalidArgument(fmt::format(
          "has an unknown placeholder '{{{{{}}}}}' (known: name, value, severity, labels.X)",
          std::string(key)));
    }
    at = end + 2;
  }
  return Status::Ok();
}

std::string RenderTemplate(std::string_view text, const TemplateContext& c) {
  std::string out;
  size_t at = 0;
  for (;;) {
    size_t open = text.find("{{", at);
    size_t close = open == std::string_view::npos ? open : text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      out += text.substr(at);
      return out;
    }
    out += text.substr(at, open - at);
    std::string_view key = text.substr(open + 2, close - open - 2);
    while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    if (key == "name") {
      out += c.name;
    } else if (key == "value") {
      out += fmt::format("{:g}", c.value);
    } else if (key == "severity") {
      out += c.severity;
    } else if (key.starts_with("labels.") && c.labels) {
      auto it = c.labels->find(std::string(key.substr(7)));
      if (it != c.labels->end()) out += it->second;
    }
    at = close + 2;
  }
}

Result<RuleSpec> ParseRuleDocument(const json::value& doc, std::string_view name) {
  if (!doc.is_object()) return Status::InvalidArgument("the alert must be a JSON object");
  std::vector<FieldError> errors;
  const json::object* spec = DocumentSpec(doc.as_object(), "Alert", name, errors);
  if (!spec) return Status::Validation(std::move(errors));
  RuleSpec s;
  JsonDecoder d(*spec, spec == &doc.as_object() ? "" : "spec.");
  if (auto sig = d.String("signal", true)) {
    auto sel = ParseSelector(*sig);
    if (!sel.ok()) {
      d.AddError("signal", sel.status().message());
    } else {
      s.signal = std::move(*sel);
    }
  }
  if (auto t = d.String("transform", false)) {
    bool known = false;
    for (Transform x : {Transform::kValue, Transform::kRate, Transform::kDelta, Transform::kP50,
                        Transform::kP90, Transform::kP95, Transform::kP99}) {
      if (*t == TransformName(x)) {
        s.transform = x;
        known = true;
      }
    }
    if (!known) {
      d.AddError("transform",
                 "must be value, rate, delta, or a histogram quantile: p50, p90, p95, p99");
    }
  }
  ReadDurationField(d, "window", 10'000, kMaxWindowMs, &s.window_ms);
  ReadCondition(d, s);
  ReadDurationField(d, "for", 0, kMaxForMs, &s.for_ms);
  if (auto sev = d.String("severity", false)) {
    if (*sev == "critical") {
      s.severity = Severity::kCritical;
    } else if (*sev == "warning") {
      s.severity = Severity::kWarning;
    } else if (*sev == "info") {
      s.severity = Severity::kInfo;
    } else {
      d.AddError("severity", "must be critical, warning or info");
    }
  }
  ReadStringMap(d, "labels", false, s.labels);
  ReadStringMap(d, "annotations", true, s.annotations);
  ReadNotify(d, s);
  if (auto e = d.Bool("enabled", false)) s.enabled = *e;
  AppendErrors(errors, d.Finish());
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return s;
}

}  // namespace drover::alerts
