#pragma once
// The control center's read-only views (docs/environments.md), for agents and watchers:
//   GET|HEAD /v1/cc/agent?environment=E    the effective cc-a-* set
//   GET|HEAD /v1/cc/watcher?environment=E  the effective cc-w-* set
// Layers, lowest first: global variables, the environment's agent: block (cc-a-* only), the
// environment's own variables; "" and "-" mean unset and are left out. The set comes as a JSON
// object {key: value} (canonical: sorted keys, no whitespace) and as response headers
// `key: value` (so an agent can also be pointed at any HTTP endpoint that sets such headers); a
// value that cannot be a header value (control characters, or over 8 KiB) is in the body only.
//
// The view's index (X-Drover-Index, ETag) is the change index at which this server first saw
// the set as it is now, so it moves only when the set changes; `?index=N&wait=` blocks until it
// passes N, however many unrelated writes happen meanwhile. Answers are cached per view until
// the next committed change. With a signing key, X-Drover-Signature signs each answer
// (signing.h). An agent key made by a join reads its own environment only.
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "control/signing.h"
#include "control/variables.h"
#include "http/blocking.h"
#include "http/router.h"

namespace drover::control {

// The agent: block of environment `env` of `tenant` (empty when none).
using AgentDefaultsFn = std::function<Result<std::map<std::string, std::string>>(
    const std::string& tenant, const std::string& env)>;

struct ControlCenterOptions {
  std::shared_ptr<const SigningKey> signing_key;  // null: answers are not signed
  std::chrono::seconds signature_ttl{300};        // how long a signed answer stays valid
};

// Owns the views' cache and state; opaque to callers.
class ControlCenterViews {
 public:
  virtual ~ControlCenterViews() = default;
};

// Adds the routes; the returned object owns the view cache and must outlive the router.
std::unique_ptr<ControlCenterViews> AddControlCenterRoutes(
    http::Router& router, VariableService& vars, AgentDefaultsFn agent_defaults,
    store::Store& store, http::Waiters& waiters, ControlCenterOptions options);

// Whether `v` can be sent as an HTTP header value as it is.
bool IsHeaderSafe(std::string_view v);

}  // namespace drover::control
