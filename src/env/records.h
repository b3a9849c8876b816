#pragma once
// What environments and their instances are made of, as the services read and write them
// (docs/environments.md): records only, no behaviour.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/page.h"
#include "env/spec.h"
#include "env/states.h"

namespace drover::env {

// Change topic of every environment, instance and run write.
inline constexpr std::string_view kTopic = "environments";

struct Environment {
  std::string tenant;
  std::string name;
  std::string spec_json;  // canonical (SpecToJson)
  EnvironmentSpec spec;
  // Why the stored spec does not parse (written by an older version, or damaged): then `spec`
  // is the default and nothing acts on it. Empty when it parses.
  std::string spec_error;
  std::string join_token;
  int64_t create_index = 0;
  int64_t modify_index = 0;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<std::string> scale_capacity;  // POST .../scale, until the spec's capacity changes
  int64_t active_at_ms = 0;  // proxied traffic last reached it (the gateway's touch); 0 never
  // The capacity in force: the scale override, else the spec's.
  const std::string& capacity() const { return scale_capacity ? *scale_capacity : spec.capacity; }
};

struct LastRun {
  int64_t seq = 0;
  std::string commit, status;
  std::optional<int64_t> main_exit;
  int64_t duration_ms = 0;
  int64_t finished_at_ms = 0;
};

struct Instance {
  std::string id, tenant, environment, hostname, address, provider_id;
  InstanceState state = InstanceState::kStarting;
  std::string facts_json = "{}";
  std::string agent_version;
  std::string current_run_json;  // "" when idle
  int64_t skipped_runs = 0;
  std::optional<int64_t> last_heartbeat_ms;
  int64_t restarts = 0;
  int64_t created_at_ms = 0;
  std::optional<LastRun> last_run;
  std::string provider_data;  // the provider's (JSON)
  std::string state_reason;   // why it is in its state
  // When its state last changed (or, while starting or running, it last reported news): for an
  // unhealthy instance, when it became unhealthy (its restart backoff runs from then).
  int64_t updated_at_ms = 0;
  // "once" for an agent run by cron (drover agent --once), judged by the age of its last run
  // against `run_interval_ms` rather than by heartbeats; "" for a daemon.
  std::string run_mode;
  int64_t run_interval_ms = 0;
};

struct Event {
  int64_t seq = 0;
  std::string instance, kind, reason;
  int64_t at_ms = 0;
};

// What an agent reports after a run (docs/agent.md).
struct RunReport {
  std::string run_id;
  int64_t var_index = 0;
  std::string commit;
  std::string status;  // ok | failed | skipped
  std::string reason;
  std::optional<int64_t> pre_exit, main_exit, post_exit;
  int64_t started_at_ms = 0, finished_at_ms = 0;
  std::string log_tail;  // at most kMaxLogTail bytes
};
inline constexpr std::size_t kMaxLogTail = 64 * 1024;

struct Run {
  int64_t seq = 0;
  RunReport report;
  int64_t received_at_ms = 0;
};

struct Heartbeat {
  std::string agent_version, hostname;  // "" keeps the instance's
  std::string facts_json;               // "" keeps the instance's
  std::string current_run_json;         // "" when idle
  int64_t skipped_runs = 0;
  std::string run_mode;         // "daemon" or "once"; "" keeps the instance's
  int64_t run_interval_ms = 0;  // with run_mode "once": the cron period (cc-a-interval)
};

struct Joined {
  std::string instance_id;
  std::string agent_key;  // shown once
  Environment environment;
};

// Where an environment's desired capacity comes from (docs/schedules.md): while a schedule's window
// is open, or the watcher's cc-w-* variables apply, they hold it; else a scale call; else the spec.
struct CapacityHold {
  std::string capacity;  // a number or a capacity map, as text
  std::string source;    // "window <schedule>", "watcher (cc-w-*)"
};
struct HoldView {
  std::optional<CapacityHold> hold;
  std::optional<int64_t> next_change_ms;  // when a hold can next begin or end
};
using HoldFn =
    std::function<HoldView(const std::string& tenant, const std::string& env, int64_t now_ms)>;

// An environment's phase as its status shows it (docs/environments.md): stopped, ready,
// degraded, pending or scaling, from what it should run and its instances' states.
struct InstanceTally {
  int64_t running = 0, broken = 0, live = 0;  // broken: unhealthy or failed; live: not terminated
  void Add(InstanceState state);
};
Phase PhaseOf(bool spec_error, std::optional<int64_t> desired, const InstanceTally& t);

struct DesiredCapacity {
  std::string capacity;                   // text in force
  std::string source;                     // spec | scale | window <name> | watcher (cc-w-*)
  std::optional<int64_t> desired;         // resolved for the provider's cloud/region
  std::optional<int64_t> next_change_ms;  // a hold may begin or end then
};

using drover::Page;

}  // namespace drover::env
