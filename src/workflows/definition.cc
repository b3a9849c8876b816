#include "workflows/definition.h"

#include <algorithm>
#include <boost/json.hpp>

#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"
#include "workflows/template.h"

namespace drover::workflows {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

constexpr milliseconds kDay{24LL * 3600 * 1000};

struct Limits {
  milliseconds min, max;
  const char* text;
};
constexpr Limits kTimeoutLimits{milliseconds(1000), 30 * kDay, "1s .. 30d"};
constexpr Limits kSleepLimits{milliseconds(1), 365 * kDay, "1ms .. 365d"};
constexpr Limits kBackoffLimits{milliseconds(0), kDay, "0s .. 1d"};
constexpr Limits kRetentionLimits{milliseconds(60'000), 365 * kDay, "1m .. 365d"};

std::optional<milliseconds> ReadDuration(JsonDecoder& d, std::string_view field, bool required,
                                         const Limits& limits) {
  auto text = d.String(field, required);
  if (!text) return std::nullopt;
  auto v = ParseDuration(*text);
  if (!v || *v < limits.min || *v > limits.max) {
    d.AddError(field, std::string("must be a duration in ") + limits.text);
    return std::nullopt;
  }
  return v;
}

std::string ReadName(JsonDecoder& d, std::string_view field, bool required) {
  auto s = d.String(field, required);
  if (!s) return "";
  if (!IsValidName(*s)) d.AddError(field, std::string(kNameRule));
  return *s;
}

bool IsHttpUrl(std::string_view u) { return u.starts_with("http://") || u.starts_with("https://"); }

constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

// The type-specific fields of a step.
void ParseTypeFields(JsonDecoder& d, StepSpec& step) {
  switch (step.type) {
    case StepType::kTask:
      step.queue = ReadName(d, "queue", true);
      d.String("command", false);
      d.Raw("input", false);
      break;
    case StepType::kHttp: {
      if (auto url = d.String("url", true)) {
        if (url->starts_with("https://")) {
          d.AddError("url", "https:// is not supported yet by http steps; use http://");
        } else if (url->find("{{") == std::string::npos && !IsHttpUrl(*url)) {
          d.AddError("url", "must start with http://");
        }
      }
      if (auto m = d.String("method", false)) {
        bool known = false;
        for (auto k : kMethods) known = known || *m == k;
        if (!known) d.AddError("method", "must be one of GET, POST, PUT, PATCH, DELETE, HEAD");
      }
      if (const auto* h = d.Raw("headers", false)) {
        if (!h->is_object()) {
          d.AddError("headers", "must be an object of strings");
        } else {
          for (const auto& kv : h->as_object()) {
            if (!kv.value().is_string()) {
              d.AddError("headers", "must be an object of strings");
              break;
            }
          }
        }
      }
      d.Raw("body", false);
      break;
    }
    case StepType::kSleep:
      if (auto v = ReadDuration(d, "duration", true, kSleepLimits)) step.duration = *v;
      break;
    case StepType::kScale:
      step.environment = ReadName(d, "environment", true);
      if (const auto* c = d.Raw("capacity", true)) {
        bool ok = (c->is_int64() && c->as_int64() >= 0 && c->as_int64() <= 100000) ||
                  (c->is_string() && c->as_string().find("{{") != json::string::npos);
        if (!ok) d.AddError("capacity", "must be 0..100000 or a template");
      }
      break;
    case StepType::kWait:
      step.signal = ReadName(d, "signal", false);
      if (step.signal.empty()) step.signal = step.name;
      break;
  }
}

std::optional<StepType> ParseType(std::string_view t) {
  if (t == "task") return StepType::kTask;
  if (t == "http") return StepType::kHttp;
  if (t == "sleep") return StepType::kSleep;
  if (t == "scale") return StepType::kScale;
  if (t == "wait") return StepType::kWait;
  return std::nullopt;
}

// One step; `needs` names are returned separately (resolved once every name is known).
struct RawNeeds {
  bool given = false;
  std::vector<std::string> names;
};

StepSpec ParseStep(const json::value& v, const std::string& prefix, RawNeeds& needs,
                   bool allow_needs, std::vector<FieldError>& errors) {
  StepSpec step;
  if (!v.is_object()) {
    errors.push_back({prefix, "must be an object"});
    return step;
  }
  JsonDecoder d(v.as_object(), prefix + ".");
  step.name = ReadName(d, "name", true);
  if (auto t = d.String("type", true)) {
    if (auto type = ParseType(*t)) {
      step.type = *type;
      ParseTypeFields(d, step);
    } else {
      d.AddError("type", "must be one of task, http, sleep, scale, wait");
    }
  }
  if (const auto* n = d.Raw("needs", false)) {
    if (!allow_needs) {
      d.AddError("needs", "on_failure steps run in order and have no needs");
    } else if (!n->is_array()) {
      d.AddError("needs", "must be a list of step names");
    } else {
      needs.given = true;
      for (size_t i = 0; i < n->as_array().size(); ++i) {
        const auto& e = n->as_array()[i];
        if (!e.is_string()) {
          d.AddError("needs[" + std::to_string(i) + "]", "must be a step name");
          continue;
        }
        needs.names.emplace_back(e.as_string());
      }
    }
  }
  step.timeout = ReadDuration(d, "timeout", false, kTimeoutLimits);
  // Steps the engine runs itself always end: a server that died mid-call leaves them to their
  // timeout (and retry policy).
  if (!step.timeout && step.type == StepType::kHttp) step.timeout = milliseconds(30'000);
  if (!step.timeout && step.type == StepType::kScale) step.timeout = milliseconds(5 * 60'000);
  if (const auto* r = d.Raw("retry", false)) {
    if (!r->is_object()) {
      d.AddError("retry", "must be an object");
    } else {
      JsonDecoder rd(r->as_object(), prefix + ".retry.");
      if (auto m = rd.Int("max_attempts", false)) {
        if (*m < 1 || *m > 100) rd.AddError("max_attempts", "must be 1..100");
        step.retry.max_attempts = static_cast<int>(*m);
      }
      if (auto b = ReadDuration(rd, "backoff", false, kBackoffLimits)) step.retry.backoff = *b;
      if (auto b = ReadDuration(rd, "max_backoff", false, kBackoffLimits)) {
        step.retry.max_backoff = *b;
      }
      if (step.retry.max_backoff < step.retry.backoff) {
        rd.AddError("max_backoff", "must not be less than backoff");
      }
      AppendErrors(errors, rd.Finish());
    }
  }
  AppendErrors(errors, d.Finish());
  step.fields = ToJson(v);
  step.parsed = std::make_shared<const json::value>(v);
  return step;
}

// The fields whose strings may hold templates.
constexpr std::string_view kTemplated[] = {"input", "url",     "headers",
                                           "body",  "command", "capacity"};

}  // namespace

std::string_view StepTypeName(StepType t) {
  switch (t) {
    case StepType::kTask:
      return "task";
    case StepType::kHttp:
      return "http";
    case StepType::kSleep:
      return "sleep";
    case StepType::kScale:
      return "scale";
    case StepType::kWait:
      return "wait";
  }
  return "task";
}

milliseconds RetryPolicy::DelayBefore(int next) const {
  milliseconds d = backoff;
  for (int i = 2; i < next && d < max_backoff; ++i) d *= 2;
  return std::min(d, max_backoff);
}

int WorkflowSpec::Find(std::string_view name) const {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].name == name) return static_cast<int>(i);
  }
  for (size_t i = 0; i < on_failure.size(); ++i) {
    if (on_failure[i].name == name) return static_cast<int>(steps.size() + i);
  }
  return -1;
}

const StepSpec& WorkflowSpec::At(int index) const {
  auto i = static_cast<size_t>(index);
  return i < steps.size() ? steps[i] : on_failure[i - steps.size()];
}

Result<WorkflowSpec> ParseWorkflowDocument(const json::value& doc, const std::string& name) {
  if (!doc.is_object()) return Status::InvalidArgument("the workflow must be an object");
  std::vector<FieldError> errors;
  const json::object* spec_obj = DocumentSpec(doc.as_object(), "Workflow", name, errors);
  if (!spec_obj) return Status::Validation(std::move(errors));
  WorkflowSpec spec;
  JsonDecoder d(*spec_obj, "spec.");
  std::vector<RawNeeds> needs;
  const json::value* steps = d.Raw("steps", true);
  if (steps && (!steps->is_array() || steps->as_array().empty() ||
                steps->as_array().size() > static_cast<size_t>(kMaxSteps))) {
    d.AddError("steps", "must be a list of 1 to " + std::to_string(kMaxSteps) + " steps");
  } else if (steps) {
    const auto& arr = steps->as_array();
    needs.resize(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
      spec.steps.push_back(
          ParseStep(arr[i], "spec.steps[" + std::to_string(i) + "]", needs[i], true, errors));
    }
  }
  if (const auto* f = d.Raw("on_failure", false)) {
    if (!f->is_array() || f->as_array().size() > static_cast<size_t>(kMaxSteps)) {
      d.AddError("on_failure", "must be a list of at most " + std::to_string(kMaxSteps) + " steps");
    } else {
      for (size_t i = 0; i < f->as_array().size(); ++i) {
        RawNeeds none;
        spec.on_failure.push_back(ParseStep(
            f->as_array()[i], "spec.on_failure[" + std::to_string(i) + "]", none, false, errors));
      }
    }
  }
  if (const auto* c = d.Raw("concurrency", false)) {
    if (!c->is_object()) {
      d.AddError("concurrency", "must be an object");
    } else {
      JsonDecoder cd(c->as_object(), "spec.concurrency.");
      Concurrency conc;
      if (auto k = cd.String("key", true)) {
        conc.key = *k;
        std::vector<FoundRef> refs;
        CollectRefs(json::value(json::string(*k)), "spec.concurrency.key", refs, errors);
        for (const auto& r : refs) {
          if (!r.ref.step.empty()) cd.AddError("key", "may only read {{ input... }}");
        }
      }
      if (auto m = cd.Int("max", false)) {
        if (*m < 1 || *m > 10000) cd.AddError("max", "must be 1..10000");
        conc.max = static_cast<int>(*m);
      }
      AppendErrors(errors, cd.Finish());
      spec.concurrency = std::move(conc);
    }
  }
  if (const auto* t = d.Raw("triggers", false)) {
    if (!t->is_array()) {
      d.AddError("triggers", "must be a list like [{topic: orders}]");
    } else {
      for (size_t i = 0; i < t->as_array().size(); ++i) {
        const auto& e = t->as_array()[i];
        std::string field = "triggers[" + std::to_string(i) + "]";
        if (!e.is_object()) {
          d.AddError(field, "must be an object like {topic: orders}");
          continue;
        }
        JsonDecoder td(e.as_object(), "spec." + field + ".");
        std::string topic = ReadName(td, "topic", true);
        AppendErrors(errors, td.Finish());
        if (!topic.empty()) spec.trigger_topics.push_back(topic);
      }
    }
  }
  if (auto r = ReadDuration(d, "retention", false, kRetentionLimits)) spec.retention = *r;
  AppendErrors(errors, d.Finish());

  // Names: unique across steps and on_failure.
  const int n = static_cast<int>(spec.steps.size());
  for (int i = 0; i < spec.size(); ++i) {
    const auto& s = spec.At(i);
    if (!s.name.empty() && spec.Find(s.name) != i) {
      std::string field = i < n ? "spec.steps[" + std::to_string(i) + "].name"
                                : "spec.on_failure[" + std::to_string(i - n) + "].name";
      errors.push_back({field, "another step is named " + s.name});
    }
  }
  // Needs: the previous step by default; names resolved; then a topological order.
  for (int i = 0; i < n; ++i) {
    auto& s = spec.steps[i];
    std::string field = "spec.steps[" + std::to_string(i) + "].needs";
    if (!needs[i].given) {
      if (i > 0) s.needs.push_back(i - 1);
      continue;
    }
    for (size_t k = 0; k < needs[i].names.size(); ++k) {
      const auto& want = needs[i].names[k];
      int j = spec.Find(want);
      std::string f = field + "[" + std::to_string(k) + "]";
      if (j < 0 || j >= n) {
        errors.push_back({f, "no step named " + want});
      } else if (j == i) {
        errors.push_back({f, "a step cannot need itself"});
      } else if (std::find(s.needs.begin(), s.needs.end(), j) != s.needs.end()) {
        errors.push_back({f, want + " is named twice"});
      } else {
        s.needs.push_back(j);
      }
    }
  }
  // Kahn's order; what is left is on a cycle. ancestors[i][j]: i runs after j.
  std::vector<std::vector<bool>> ancestors(n, std::vector<bool>(n, false));
  std::vector<int> waiting(n);
  std::vector<std::vector<int>> children(n);
  std::vector<int> ready;
  for (int i = 0; i < n; ++i) {
    waiting[i] = static_cast<int>(spec.steps[i].needs.size());
    for (int j : spec.steps[i].needs) children[j].push_back(i);
    if (waiting[i] == 0) ready.push_back(i);
  }
  int done = 0;
  while (!ready.empty()) {
    int j = ready.back();
    ready.pop_back();
    ++done;
    for (int c : children[j]) {
      ancestors[c][j] = true;
      for (int a = 0; a < n; ++a) {
        if (ancestors[j][a]) ancestors[c][a] = true;
      }
      if (--waiting[c] == 0) ready.push_back(c);
    }
  }
  if (done < n) {
    for (int i = 0; i < n; ++i) {
      if (waiting[i] > 0) {
        errors.push_back({"spec.steps[" + std::to_string(i) + "].needs",
                          "makes a cycle through " + spec.steps[i].name});
        break;
      }
    }
  }
  // Templates: a step reads only steps it runs after; on_failure steps read any step.
  for (int i = 0; i < spec.size(); ++i) {
    const auto& s = spec.At(i);
    if (!s.parsed || !s.parsed->is_object()) continue;
    const json::value& parsed = *s.parsed;
    std::string prefix = i < n ? "spec.steps[" + std::to_string(i) + "]"
                               : "spec.on_failure[" + std::to_string(i - n) + "]";
    std::vector<FoundRef> refs;
    for (auto field : kTemplated) {
      if (const auto* v = parsed.as_object().if_contains(field)) {
        CollectRefs(*v, prefix + "." + std::string(field), refs, errors);
      }
    }
    for (const auto& r : refs) {
      if (r.ref.step.empty()) continue;
      int j = spec.Find(r.ref.step);
      if (j < 0 || j >= n) {
        errors.push_back({r.field, "no step named " + r.ref.step});
      } else if (i < n && !ancestors[i][j]) {
        errors.push_back({r.field, "reads " + r.ref.step +
                                       ", which this step does not run after (add it to needs)"});
      }
    }
  }
  if (!errors.empty()) return Status::Validation(std::move(errors));
  for (int i = 0; i < spec.size(); ++i)
    spec.waits = spec.waits || spec.At(i).type == StepType::kWait;
  return spec;
}

}  // namespace drover::workflows
