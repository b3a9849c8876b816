#pragma once
// A gateway route's spec (docs/gateway.md): where `/svc/{name}/...` goes and on what terms.
// Parsed from the JSON or YAML document users send, every problem a field error.
#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace drover::gateway {

enum class Balance { kRoundRobin, kLeastRequest, kHash };
std::string_view BalanceName(Balance b);

// An upstream URL, split: http://host:port[/base]
struct UpstreamUrl {
  std::string host;
  uint16_t port = 80;
  std::string base;  // "" or "/prefix" (no trailing '/')
  std::string text;  // as given
  std::string authority() const { return host + ":" + std::to_string(port); }
};
// Parses "http://host[:port][/base]"; InvalidArgument says why not (https, user info, a query).
Result<UpstreamUrl> ParseUpstreamUrl(std::string_view url);

struct RateLimit {
  double rps = 0;
  double burst = 0;
};

struct RouteSpec {
  std::vector<UpstreamUrl> upstreams;  // static upstreams, or:
  std::string environment;             // that environment's running instances, or:
  std::string per_user_template;       // each caller's own environment, made from this one
  bool auth_required = true;
  std::vector<std::string> roles;  // roles allowed in (admin, user, viewer); empty = all of them
  bool strip_prefix = true;        // /svc/NAME/a/b reaches the upstream as /a/b
  std::chrono::milliseconds timeout{30000};         // total, until the answer's head
  std::chrono::milliseconds connect_timeout{5000};  // per connection attempt
  std::chrono::milliseconds per_try_timeout{0};     // per try; 0 = the total
  int retries = 1;                                  // tries after the first (idempotent only)
  double retry_budget = 0.2;            // retries at most this share of requests (plus a few)
  std::optional<RateLimit> rate_limit;  // per key (per client address with auth: none)
  Balance balance = Balance::kRoundRobin;
  std::string hash_header, hash_cookie;        // balance: hash on one of them (else the caller)
  int64_t eject_after = 5;                     // consecutive failures that eject an upstream
  std::chrono::milliseconds eject_for{30000};  // base ejection time (grows while it fails)
};

// Parses a document: {kind: Route, name, spec: {...}} or a bare spec; Validation with every
// field error.
Result<RouteSpec> ParseRouteDocument(const boost::json::value& doc, std::string_view name);

}  // namespace drover::gateway
