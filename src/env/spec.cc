#include "env/spec.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"
#include "control/values.h"

namespace drover::env {
namespace {

// agent: block fields and the cc-a-* variables they publish.
constexpr std::pair<std::string_view, std::string_view> kAgentFields[] = {
    {"repository", "cc-a-repository"},
    {"ref", "cc-a-ref"},
    {"type", "cc-a-type"},
    {"main_run", "cc-a-main-run"},
    {"pre_run", "cc-a-pre-run"},
    {"post_run", "cc-a-post-run"},
    {"delay", "cc-a-delay"},
    {"interval", "cc-a-interval"},
    {"force_run", "cc-a-force-run"},
    {"desired_capacity", "cc-a-desired-capacity"},
    {"start", "cc-a-start"},
    {"stop", "cc-a-stop"},
};

// A scalar as the text a variable holds; nullopt for objects and arrays.
std::optional<std::string> ScalarText(const boost::json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  if (v.is_int64()) return std::to_string(v.as_int64());
  if (v.is_uint64()) return std::to_string(v.as_uint64());
  if (v.is_double()) return ToJson(v);
  return std::nullopt;
}

// Errors of nested decoders, gathered into one list.
struct Errors {
  std::vector<FieldError> list;
  void Take(const Status& s) { AppendErrors(list, s); }
};

const boost::json::object* Object(JsonDecoder& d, std::string_view field, const std::string& path,
                                  Errors& errors) {
  const auto* v = d.Raw(field, false);
  if (!v) return nullptr;
  if (!v->is_object()) {
    errors.list.push_back({path + std::string(field), "must be an object"});
    return nullptr;
  }
  return &v->as_object();
}

void ParseDurationField(JsonDecoder& d, std::string_view field, std::chrono::milliseconds* out,
                        bool allow_zero) {
  const auto* v = d.Raw(field, false);
  if (!v) return;
  std::optional<std::chrono::milliseconds> ms;
  if (v->is_int64() && v->as_int64() == 0) ms = std::chrono::milliseconds(0);
  if (v->is_string()) ms = ParseDuration(v->as_string());
  if (!ms || (!allow_zero && ms->count() == 0)) {
    d.AddError(field, allow_zero ? "must be a duration like 90s, 10m, 2h or 0"
                                 : "must be a positive duration like 5s, 90s or 10m");
    return;
  }
  *out = *ms;
}

void ParseAgent(const boost::json::object& obj, EnvironmentSpec& spec, Errors& errors) {
  JsonDecoder d(obj, "spec.agent.");
  auto put = [&](std::string_view field, std::string key, const boost::json::value& v) {
    auto text = ScalarText(v);
    if (!text) return d.AddError(field, "must be a string, number or boolean");
    if (auto why = control::CheckValue(key, *text)) return d.AddError(field, *why);
    spec.agent_vars[std::move(key)] = std::move(*text);
  };
  for (auto [field, key] : kAgentFields) {
    if (const auto* v = d.Raw(field, false)) put(field, std::string(key), *v);
  }
  if (const auto* extra = d.Raw("vars", false)) {
    if (!extra->is_object()) {
      d.AddError("vars", "must be an object of cc-a-* names (without the prefix) to values");
    } else {
      for (const auto& [k, v] : extra->as_object()) {
        std::string key = "cc-a-" + std::string(k);
        if (!IsValidName(k)) {
          d.AddError("vars", fmt::format("'{}' {}", std::string_view(k), kNameRule));
          continue;
        }
        put("vars", key, v);
      }
    }
  }
  errors.Take(d.Finish());
}

void ParseHealth(const boost::json::object& obj, HealthSpec& h, Errors& errors) {
  JsonDecoder d(obj, "spec.health.");
  ParseDurationField(d, "heartbeat_interval", &h.heartbeat_interval, false);
  if (auto n = d.Int("unhealthy_after", false)) {
    if (*n < 1 || *n > 1000) d.AddError("unhealthy_after", "must be 1..1000");
    h.unhealthy_after = *n;
  }
  if (auto r = d.String("restart", false)) {
    if (*r != "always" && *r != "on-failure" && *r != "never") {
      d.AddError("restart", "must be one of always, on-failure, never");
    }
    h.restart = *r;
  }
  if (auto n = d.Int("max_restarts", false)) {
    if (*n < 0 || *n > 1000000) d.AddError("max_restarts", "must be 0..1000000");
    h.max_restarts = *n;
  }
  errors.Take(d.Finish());
}

void ParseService(const boost::json::object& obj, ServiceSpec& s, Errors& errors) {
  JsonDecoder d(obj, "spec.service.");
  if (auto p = d.Int("port", true)) {
    if (*p < 1 || *p > 65535) d.AddError("port", "must be 1..65535");
    s.port = *p;
  }
  if (auto p = d.String("health_path", false)) {
    if (p->empty() || p->front() != '/') d.AddError("health_path", "must start with '/'");
    s.health_path = *p;
  }
  errors.Take(d.Finish());
}

void ParseExec(const boost::json::object& obj, ExecSpec& x, Errors& errors) {
  JsonDecoder d(obj, "spec.exec.");
  x.create = d.String("create", false).value_or("");
  x.del = d.String("delete", false).value_or("");
  x.list = d.String("list", false).value_or("");
  x.set_capacity = d.String("set_capacity", false).value_or("");
  ParseDurationField(d, "timeout", &x.timeout, false);
  x.cloud = d.String("cloud", false).value_or("");
  x.region = d.String("region", false).value_or("");
  if (const auto* e = d.Raw("env", false)) {
    if (!e->is_object()) {
      d.AddError("env", "must be an object of NAME: value");
    } else {
      for (const auto& [k, v] : e->as_object()) {
        auto text = ScalarText(v);
        if (!text || k.empty() || k.find('=') != boost::json::string_view::npos) {
          d.AddError("env",
                     fmt::format("'{}' must be a NAME with a string value", std::string_view(k)));
          continue;
        }
        x.env[std::string(k)] = *text;
      }
    }
  }
  bool group = !x.set_capacity.empty(), instances = !x.create.empty() || !x.del.empty();
  if (group && instances) {
    d.AddError("set_capacity", "is group mode: give it, or create and delete, not both");
  } else if (!group && (x.create.empty() || x.del.empty())) {
    d.AddError(x.create.empty() ? "create" : "delete",
               "is required (instance mode needs create and delete; group mode set_capacity)");
  }
  errors.Take(d.Finish());
}

}  // namespace

// A capacity map with every fraction as null: a fraction means "leave the capacity alone" as
// null does, and the stored text then reads back the same (Boost.JSON's parser does not
// always round a double back to the bits it printed).
static boost::json::value WithoutFractions(const boost::json::value& v) {
  if (v.is_double()) return nullptr;
  if (!v.is_object()) return v;
  boost::json::object out;
  for (const auto& [k, x] : v.as_object()) out[k] = WithoutFractions(x);
  return out;
}

Result<EnvironmentSpec> ParseEnvironmentDocument(const boost::json::value& doc,
                                                 const std::string& name) {
  if (!doc.is_object()) return Status::InvalidArgument("the environment must be an object");
  const auto& top = doc.as_object();
  Errors errors;
  const boost::json::object* spec_obj = DocumentSpec(top, "Environment", name, errors.list);
  if (!spec_obj) return Status::Validation(std::move(errors.list));
  EnvironmentSpec spec;
  JsonDecoder d(*spec_obj, "spec.");
  if (auto p = d.String("provider", false)) {
    if (*p != "local" && *p != "exec" && *p != "static") {
      d.AddError("provider", "must be one of local, exec, static");
    }
    spec.provider = *p;
  }
  if (const auto* c = d.Raw("capacity", false)) {
    std::string text = c->is_object() ? ToJson(WithoutFractions(*c)) : ScalarText(*c).value_or("");
    auto parsed = control::ParseCapacity(text);
    if (!parsed.ok()) {
      d.AddError("capacity", parsed.status().message());
    } else if (!c->is_object() && !parsed->all.count) {
      d.AddError("capacity", "must be a whole number or a capacity map");
    }
    spec.capacity = text;
  }
  if (const auto* a = Object(d, "agent", "spec.", errors)) ParseAgent(*a, spec, errors);
  if (const auto* h = Object(d, "health", "spec.", errors)) ParseHealth(*h, spec.health, errors);
  ParseDurationField(d, "idle_timeout", &spec.idle_timeout, true);
  ParseDurationField(d, "wake_timeout", &spec.wake_timeout, false);
  if (spec.wake_timeout > std::chrono::hours(1)) d.AddError("wake_timeout", "must be at most 1h");
  if (const auto* s = Object(d, "service", "spec.", errors)) {
    spec.service.emplace();
    ParseService(*s, *spec.service, errors);
  }
  if (const auto* x = Object(d, "exec", "spec.", errors)) {
    spec.exec.emplace();
    ParseExec(*x, *spec.exec, errors);
  }
  if (spec.provider == "exec" && !spec.exec && !d.Raw("exec", false)) {
    errors.list.push_back({"spec.exec", "is required with provider exec (its commands)"});
  } else if (spec.provider != "exec" && spec.exec) {
    errors.list.push_back({"spec.exec", "is only for provider exec"});
  }
  errors.Take(d.Finish());
  if (!errors.list.empty()) return Status::Validation(std::move(errors.list));
  return spec;
}

std::string SpecToJson(const EnvironmentSpec& spec) {
  boost::json::object agent, extra;
  for (const auto& [key, value] : spec.agent_vars) {
    bool known = false;
    for (auto [field, k] : kAgentFields) {
      if (k == key) {
        agent[field] = value;
        known = true;
      }
    }
    if (!known) extra[key.substr(5)] = value;
  }
  if (!extra.empty()) agent["vars"] = std::move(extra);
  boost::json::value capacity;
  if (auto c = control::ParseCapacity(spec.capacity); c.ok() && c->clouds.empty() && c->all.count) {
    capacity = *c->all.count;
  } else {
    capacity = boost::json::parse(spec.capacity);
  }
  boost::json::object out{
      {"provider", spec.provider},
      {"capacity", std::move(capacity)},
      {"agent", std::move(agent)},
      {"health",
       {{"heartbeat_interval", FormatDuration(spec.health.heartbeat_interval)},
        {"unhealthy_after", spec.health.unhealthy_after},
        {"restart", spec.health.restart},
        {"max_restarts", spec.health.max_restarts}}},
      {"idle_timeout", FormatDuration(spec.idle_timeout)},
      {"wake_timeout", FormatDuration(spec.wake_timeout)},
  };
  if (spec.service) {
    out["service"] = {{"port", spec.service->port}, {"health_path", spec.service->health_path}};
  } else {
    out["service"] = nullptr;
  }
  if (spec.exec) {
    const auto& x = *spec.exec;
    boost::json::object ex{{"timeout", FormatDuration(x.timeout)}};
    for (auto [k, v] : {std::pair{"create", &x.create},
                        {"delete", &x.del},
                        {"list", &x.list},
                        {"set_capacity", &x.set_capacity},
                        {"cloud", &x.cloud},
                        {"region", &x.region}}) {
      if (!v->empty()) ex[k] = *v;
    }
    if (!x.env.empty()) {
      boost::json::object e;
      for (const auto& [k, v] : x.env) e[k] = v;
      ex["env"] = std::move(e);
    }
    out["exec"] = std::move(ex);
  }
  return ToJson(out);
}

std::string AgentVarsToJson(const std::map<std::string, std::string>& vars) {
  std::string out = "{";
  for (const auto& [k, v] : vars) {
    if (out.size() > 1) out += ',';
    AppendJsonString(out, k);
    out += ':';
    AppendJsonString(out, v);
  }
  return out + "}";
}

std::map<std::string, std::string> AgentVarsFromJson(std::string_view json) {
  std::map<std::string, std::string> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return out;
  for (const auto& [k, val] : v.as_object()) {
    if (val.is_string()) out[std::string(k)] = std::string(val.as_string());
  }
  return out;
}

ProviderPolicy ProviderPolicy::Default(bool dev) {
  ProviderPolicy p;
  p.dev = dev;
  if (dev) p.enabled.insert("local");
  return p;
}

Result<ProviderPolicy> ProviderPolicy::Parse(std::string_view list, bool dev) {
  ProviderPolicy p;
  p.dev = dev;
  p.enabled.clear();
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string name(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name.empty()) continue;
    if (name != "static" && name != "exec" && name != "local") {
      return Status::InvalidArgument(
          fmt::format("unknown provider '{}' (providers: static, exec, local)", name));
    }
    p.enabled.insert(std::move(name));
  }
  if (p.enabled.empty()) return Status::InvalidArgument("name at least one provider");
  return p;
}

Status ProviderPolicy::Allow(const EnvironmentSpec& spec, bool admin) const {
  if (!Enabled(spec.provider)) {
    std::string on;
    for (const auto& e : enabled) on += (on.empty() ? "" : ", ") + e;
    return Status::Validation(
        {{"spec.provider", fmt::format("provider {} is not enabled on this server (drover "
                                       "server --providers; enabled: {})",
                                       spec.provider, on)}});
  }
  if (admin) return Status::Ok();
  if (spec.provider == "exec") {
    return Status::PermissionDenied(
        "provider exec runs its commands on the server's host: admin keys only");
  }
  if (spec.provider == "local" && !dev) {
    return Status::PermissionDenied(
        "provider local runs agents on the server's host: admin keys only (any key with "
        "drover server --dev)");
  }
  return Status::Ok();
}

}  // namespace drover::env
