#pragma once
// An environment's spec (docs/environments.md): parsed from the JSON or YAML document users send,
// validated with a field error per problem, defaults filled in, and written back as canonical JSON
// (what the store keeps and GET shows). The agent: block becomes the environment's cc-a-*
// variables.
#include <boost/json/value.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace drover::env {

struct HealthSpec {
  std::chrono::milliseconds heartbeat_interval{5000};
  int64_t unhealthy_after = 3;     // missed heartbeats
  std::string restart = "always";  // always | on-failure | never
  int64_t max_restarts = 10;
};

struct ServiceSpec {
  int64_t port = 0;
  std::string health_path = "/healthz";
};

// provider: exec — user commands do the work (docs/fleet.md). Instance mode: `create` and `delete`
// (and optionally `list`) per instance; group mode: `set_capacity` sets a group's size and the
// instances' agents join by themselves.
struct ExecSpec {
  std::string create, del, list, set_capacity;  // shell commands (sh -c), run in the data dir
  std::chrono::milliseconds timeout{60000};
  std::string cloud, region;               // resolve the capacity map for this group
  std::map<std::string, std::string> env;  // extra environment for the commands
};

struct EnvironmentSpec {
  std::string provider = "local";  // local | exec | static
  std::string capacity = "0";      // a whole number or a capacity map, as text (values.h)
  // The agent: block as cc-a-* variables: {"cc-a-repository": "file:///...", ...}.
  std::map<std::string, std::string> agent_vars;
  HealthSpec health;
  std::chrono::milliseconds idle_timeout{0};  // 0 = never
  // How long the gateway holds a request to this environment while waking it from zero.
  std::chrono::milliseconds wake_timeout{60000};
  std::optional<ServiceSpec> service;
  std::optional<ExecSpec> exec;
};

// Which providers a server runs (drover server --providers) and who may use them. `local` and
// `exec` run commands on the server's host with its rights: exec needs an admin key, and so
// does local except on a --dev server (a laptop, where the user is the admin anyway).
struct ProviderPolicy {
  std::set<std::string> enabled = {"static", "exec"};
  bool dev = false;
  // The default set: static and exec, plus local with --dev.
  static ProviderPolicy Default(bool dev);
  // Parses --providers ("static,exec,local"); InvalidArgument names an unknown one.
  static Result<ProviderPolicy> Parse(std::string_view list, bool dev);
  bool Enabled(const std::string& provider) const { return enabled.count(provider) > 0; }
  // Whether a caller (admin or not) may create or change an environment with `spec`:
  // Validation when its provider is not enabled here, PermissionDenied when it needs an admin.
  Status Allow(const EnvironmentSpec& spec, bool admin) const;
};

// Parses a document: {kind: Environment, name, spec: {...}} (kind and name optional; a name
// must equal `name`), or a bare spec object. Validation status with every field error.
Result<EnvironmentSpec> ParseEnvironmentDocument(const boost::json::value& doc,
                                                 const std::string& name);

// The spec as canonical JSON (every field, defaults included).
std::string SpecToJson(const EnvironmentSpec& spec);

// The agent: block's variables as a JSON object, and back.
std::string AgentVarsToJson(const std::map<std::string, std::string>& vars);
std::map<std::string, std::string> AgentVarsFromJson(std::string_view json);

}  // namespace drover::env
