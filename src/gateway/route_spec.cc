#include "gateway/route_spec.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "common/json.h"
#include "common/names.h"

namespace drover::gateway {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

constexpr int64_t kMaxTimeoutMs = 3600LL * 1000;  // an hour: longer waits are a mistake
constexpr int kMaxUpstreams = 64;
constexpr int kMaxRetries = 5;

// A header name as RFC 9110 allows (token characters).
bool IsHeaderName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

// A path prefix of plain, unreserved and sub-delim characters (no query, fragment or spaces).
bool IsBasePath(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("/-._~!$&'()*+,;=:@%").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void ReadUpstreams(JsonDecoder& d, RouteSpec& s) {
  const json::value* v = d.Raw("upstreams", false);
  if (!v || v->is_null()) return;
  if (!v->is_array()) return d.AddError("upstreams", "must be a list of http:// URLs");
  const auto& a = v->as_array();
  if (a.size() > kMaxUpstreams) {
    return d.AddError("upstreams", fmt::format("must have at most {} URLs", kMaxUpstreams));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    std::string field = fmt::format("upstreams[{}]", i);
    if (!a[i].is_string()) {
      d.AddError(field, "must be a URL string");
      continue;
    }
    auto u = ParseUpstreamUrl(a[i].as_string());
    if (!u.ok()) {
      d.AddError(field, u.status().message());
      continue;
    }
    s.upstreams.push_back(std::move(*u));
  }
}

void ReadRoles(JsonDecoder& d, RouteSpec& s) {
  const json::value* v = d.Raw("roles", false);
  if (!v || v->is_null()) return;
  if (!v->is_array()) return d.AddError("roles", "must be a list of roles (admin, user, viewer)");
  for (const auto& r : v->as_array()) {
    std::string_view name = r.is_string() ? std::string_view(r.as_string()) : "";
    if (name != "admin" && name != "user" && name != "viewer") {
      return d.AddError("roles", "each role must be admin, user or viewer");
    }
    s.roles.emplace_back(name);
  }
}

void ReadRateLimit(const json::value* v, const std::string& prefix, RouteSpec& s,
                   std::vector<FieldError>& errors) {
  if (!v || v->is_null()) return;
  if (!v->is_object()) {
    errors.push_back({prefix + "rate_limit", "must be an object {rps, burst}"});
    return;
  }
  JsonDecoder d(v->as_object(), prefix + "rate_limit.");
  RateLimit r;
  auto number = [&](std::string_view field, bool required) -> std::optional<double> {
    const json::value* n = d.Raw(field, required);
    if (!n) return std::nullopt;
    if (!n->is_number() || n->to_number<double>() <= 0 || n->to_number<double>() > 1e6) {
      d.AddError(field, "must be a number between 0 (exclusive) and 1000000");
      return std::nullopt;
    }
    return n->to_number<double>();
  };
  if (auto rps = number("rps", true)) r.rps = *rps;
  if (auto burst = number("burst", false)) r.burst = *burst;
  if (r.burst == 0) r.burst = std::max(1.0, r.rps);
  AppendErrors(errors, d.Finish());
  s.rate_limit = r;
}

void ReadBalance(JsonDecoder& d, RouteSpec& s) {
  if (auto b = d.String("balance", false)) {
    if (*b == "round_robin") {
      s.balance = Balance::kRoundRobin;
    } else if (*b == "least_request") {
      s.balance = Balance::kLeastRequest;
    } else if (*b == "hash") {
      s.balance = Balance::kHash;
    } else {
      d.AddError("balance", "must be round_robin, least_request or hash");
    }
  }
  const json::value* on = d.Raw("hash_on", false);
  if (!on || on->is_null()) return;
  if (s.balance != Balance::kHash) return d.AddError("hash_on", "needs balance: hash");
  if (!on->is_object()) return d.AddError("hash_on", "must be {header: NAME} or {cookie: NAME}");
  const auto& o = on->as_object();
  const auto* header = o.if_contains("header");
  const auto* cookie = o.if_contains("cookie");
  if (o.size() != 1 || (!header && !cookie)) {
    return d.AddError("hash_on", "must be {header: NAME} or {cookie: NAME}");
  }
  const json::value& name = header ? *header : *cookie;
  if (!name.is_string() || !IsHeaderName(name.as_string())) {
    return d.AddError(header ? "hash_on.header" : "hash_on.cookie",
                      "must be a header or cookie name");
  }
  (header ? s.hash_header : s.hash_cookie) = std::string(name.as_string());
}

}  // namespace

std::string_view BalanceName(Balance b) {
  switch (b) {
    case Balance::kRoundRobin:
      return "round_robin";
    case Balance::kLeastRequest:
      return "least_request";
    case Balance::kHash:
      return "hash";
  }
  return "round_robin";
}

Result<UpstreamUrl> ParseUpstreamUrl(std::string_view url) {
  UpstreamUrl u;
  u.text = std::string(url);
  if (url.starts_with("https://")) {
    return Status::InvalidArgument(
        "https upstreams are not supported: use http:// (the gateway"
        " talks plain HTTP to services on the private network)");
  }
  if (!url.starts_with("http://")) return Status::InvalidArgument("must be an http:// URL");
  url.remove_prefix(7);
  size_t end = url.find('/');
  std::string_view authority = url.substr(0, end);
  std::string_view path = end == std::string_view::npos ? "" : url.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument("must not carry user information");
  }
  std::string_view host = authority;
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    std::string_view port = authority.substr(colon + 1);
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      return Status::InvalidArgument("has a bad port (1..65535)");
    }
    u.port = static_cast<uint16_t>(p);
  }
  if (host.empty() || host.size() > 253) return Status::InvalidArgument("must name a host");
  for (char c : host) {
    if (!IsHostChar(c)) return Status::InvalidArgument("must name a host name or IPv4 address");
  }
  if (path.find_first_of("?#") != std::string_view::npos || !IsBasePath(path)) {
    return Status::InvalidArgument("may have a path prefix, but no query, fragment or spaces");
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  u.host = std::string(host);
  u.base = std::string(path);
  return u;
}

Result<RouteSpec> ParseRouteDocument(const json::value& doc, std::string_view name) {
  if (!doc.is_object()) return Status::InvalidArgument("the route must be a JSON object");
  std::vector<FieldError> errors;
  const json::object* spec = DocumentSpec(doc.as_object(), "Route", name, errors);
  if (!spec) return Status::Validation(std::move(errors));
  RouteSpec s;
  std::string prefix = spec == &doc.as_object() ? "" : "spec.";
  JsonDecoder d(*spec, prefix);
  ReadUpstreams(d, s);
  if (auto e = d.String("environment", false)) {
    if (!IsValidName(*e)) {
      d.AddError("environment", std::string(kNameRule));
    } else {
      s.environment = *e;
    }
  }
  if (const json::value* pu = d.Raw("per_user", false); pu && !pu->is_null()) {
    const json::value* t = pu->is_object() ? pu->as_object().if_contains("template") : nullptr;
    if (!t || pu->as_object().size() != 1 || !t->is_string() || !IsValidName(t->as_string())) {
      d.AddError("per_user", "must be {template: ENVIRONMENT} (an environment's name)");
    } else if (t->as_string().size() > 40) {
      d.AddError("per_user.template", "must be at most 40 characters (callers' names are added)");
    } else {
      s.per_user_template = std::string(t->as_string());
    }
  }
  bool has_upstreams = d.Raw("upstreams", false) != nullptr;
  bool has_env = d.Raw("environment", false) != nullptr;
  bool has_per_user = d.Raw("per_user", false) != nullptr;
  if (int(has_upstreams) + int(has_env) + int(has_per_user) > 1) {
    d.AddError(has_env ? "environment" : "per_user",
               "give one of upstreams, environment or per_user");
  } else if (!has_upstreams && !has_env && !has_per_user) {
    d.AddError("upstreams", "give upstreams (a list of http:// URLs), an environment or per_user");
  } else if (has_upstreams && s.upstreams.empty() && d.Raw("upstreams", false)->is_array() &&
             d.Raw("upstreams", false)->as_array().empty()) {
    d.AddError("upstreams", "must list at least one URL");
  }
  if (auto a = d.String("auth", false)) {
    if (*a == "required") {
      s.auth_required = true;
    } else if (*a == "none") {
      s.auth_required = false;
    } else {
      d.AddError("auth", "must be required or none");
    }
  }
  ReadRoles(d, s);
  if (!s.roles.empty() && !s.auth_required) d.AddError("roles", "need auth: required");
  if (!s.per_user_template.empty() && !s.auth_required) {
    d.AddError("per_user", "needs auth: required (each caller's key names its environment)");
  }
  if (auto b = d.Bool("strip_prefix", false)) s.strip_prefix = *b;
  int64_t ms = s.timeout.count();
  ReadDurationField(d, "timeout", 1, kMaxTimeoutMs, &ms);
  s.timeout = milliseconds(ms);
  ms = s.connect_timeout.count();
  ReadDurationField(d, "connect_timeout", 1, kMaxTimeoutMs, &ms);
  s.connect_timeout = milliseconds(ms);
  ms = s.per_try_timeout.count();
  ReadDurationField(d, "per_try_timeout", 0, kMaxTimeoutMs, &ms);
  s.per_try_timeout = milliseconds(ms);
  if (auto r = d.Int("retries", false)) {
    if (*r < 0 || *r > kMaxRetries) {
      d.AddError("retries", fmt::format("must be 0..{}", kMaxRetries));
    } else {
      s.retries = static_cast<int>(*r);
    }
  }
  if (const json::value* b = d.Raw("retry_budget", false)) {
    if (!b->is_number() || b->to_number<double>() < 0 || b->to_number<double>() > 1) {
      d.AddError("retry_budget", "must be a share of requests between 0 and 1");
    } else {
      s.retry_budget = b->to_number<double>();
    }
  }
  ReadRateLimit(d.Raw("rate_limit", false), prefix, s, errors);
  ReadBalance(d, s);
  if (auto n = d.Int("eject_after", false)) {
    if (*n < 1 || *n > 1000) {
      d.AddError("eject_after", "must be 1..1000 consecutive failures");
    } else {
      s.eject_after = *n;
    }
  }
  ms = s.eject_for.count();
  ReadDurationField(d, "eject_for", 1000, kMaxTimeoutMs, &ms);
  s.eject_for = milliseconds(ms);
  AppendErrors(errors, d.Finish());
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return s;
}

}  // namespace drover::gateway
