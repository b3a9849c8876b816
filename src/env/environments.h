#pragma once
// Environments and their instances as records (docs/environments.md): the declarative spec, the
// join token agents use, instances that joined, their heartbeats and run reports, and the event log
// of every transition. Starting instances is the fleet controller's (a later capability); here an
// instance exists because an agent joined. Thread-safe; writes are group-committed.
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/keys.h"
#include "common/clock.h"
#include "common/status.h"
#include "env/heartbeats.h"
#include "env/spec.h"
#include "http/principal.h"
#include "store/lease.h"
#include "store/store.h"

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
  std::string id, tenant, environment, state, hostname, address, provider_id;
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
  void Add(std::string_view state);
};
std::string_view PhaseOf(bool spec_error, std::optional<int64_t> desired, const InstanceTally& t);

struct DesiredCapacity {
  std::string capacity;                   // text in force
  std::string source;                     // spec | scale | window <name> | watcher (cc-w-*)
  std::optional<int64_t> desired;         // resolved for the provider's cloud/region
  std::optional<int64_t> next_change_ms;  // a hold may begin or end then
};

template <class T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;
};

class EnvironmentService {
 public:
  EnvironmentService(store::Store& store, const Clock& clock, auth::KeyService& keys)
      : store_(store), clock_(clock), keys_(keys), beats_(store, clock) {}
  // Installs where holds come from (the schedules' windows and the watcher; set once at start).
  void SetHolds(HoldFn fn, std::function<uint64_t()> version) {
    holds_ = std::move(fn);
    holds_version_ = std::move(version);
  }
  // Moves when holds may have changed for any environment.
  uint64_t HoldsVersion() const { return holds_version_ ? holds_version_() : 0; }
  // The capacity in force for `e` at `now_ms` and where it comes from.
  DesiredCapacity CapacityOf(const Environment& e, int64_t now_ms) const;

  // The environment's heartbeat interval, told to agents with each heartbeat answer: read at
  // most every few seconds per environment (a changed spec reaches agents within that).
  std::chrono::milliseconds HeartbeatInterval(const std::string& tenant, const std::string& name);
  // Writes the buffered heartbeats and stops buffering (before the store closes).
  void Stop() { beats_.Stop(); }

  // Creates or updates the spec (unchanged: the same spec again, nothing written); the join
  // token is made on creation.
  void Put(std::string tenant, std::string name, EnvironmentSpec spec,
           std::function<void(Result<std::pair<Environment, Written>>)> done);
  Result<Environment> Get(const std::string& tenant, const std::string& name);
  // Every environment's (tenant, name, modify_index): what the controller compares to find
  // the ones that changed without reading every spec.
  struct Version {
    std::string tenant, name;
    int64_t modify_index = 0;
  };
  Result<std::vector<Version>> Versions();
  Result<Page<Environment>> List(const std::string& tenant, const std::string& cursor, int limit);
  // Deletes the environment with its instances, runs, events and agent keys.
  void Delete(std::string tenant, std::string name, std::function<void(Status)> done);

  // The agent: block's cc-a-* variables; empty when there is no such environment.
  Result<std::map<std::string, std::string>> AgentVars(const std::string& tenant,
                                                       const std::string& name);

  // An agent joins `name` with its join token: a new instance and an agent key bound to it.
  // Unauthenticated when no environment of that name has this token.
  // With `instance_id`, the agent of an instance the controller started takes it over
  // (Conflict when that is not a starting instance of this environment without a key yet).
  void Join(std::string name, std::string token, std::string hostname, std::string facts_json,
            std::string instance_id, std::function<void(Result<Joined>)> done);

  // The instance `id` as `caller` may act on it: NotFound for another tenant's (or none),
  // PermissionDenied for an agent key of another instance.
  Result<Instance> InstanceFor(const http::Principal& caller, const std::string& id);
  // The environment's instances, oldest first; terminated ones only with `terminated`.
  Result<std::vector<Instance>> Instances(const std::string& tenant, const std::string& env,
                                          bool terminated = false);
  // The instance's agent stopped for good (SIGTERM): it is terminated, not unhealthy, and its
  // agent key is revoked. Its key only when the controller is already terminating it (it then
  // finishes with its own reason) or it is gone; OK either way.
  void Leave(Instance inst, std::string reason, std::function<void(Status)> done);
  // Forgets an instance: its row, runs and agent key. Conflict for a live instance that a
  // provider started (scale down, or let the controller replace it, instead).
  void Forget(Instance inst, std::function<void(Status)> done);
  // Removes instances terminated more than `retention_ms` ago, with their runs; how many.
  Result<int64_t> PruneTerminated(int64_t retention_ms);
  // The state of instance `id`; nullopt when there is no such instance.
  Result<std::optional<std::string>> InstanceState(const std::string& id);
  // The fast path of a heartbeat: the same heartbeat again from the instance's own agent key,
  // while it was last seen running, is recorded without a store read. False: RecordHeartbeat.
  bool QuietHeartbeat(const http::Principal& caller, const std::string& id, const Heartbeat& hb);

  // Records a heartbeat; a starting or unhealthy instance becomes running.
  void RecordHeartbeat(Instance inst, Heartbeat hb, std::function<void(Status)> done);
  // Stores a run report once (a repeated run_id returns the stored run, created = false).
  void RecordRun(Instance inst, RunReport report,
                 std::function<void(Result<std::pair<Run, bool>>)> done);
  // Newest first; cursor = the seq to continue below.
  Result<Page<Run>> Runs(const std::string& instance, const std::string& cursor, int limit);
  Result<Run> GetRun(const std::string& instance, int64_t seq);
  // Oldest first; cursor = the last seq seen.
  Result<Page<Event>> Events(const std::string& tenant, const std::string& env,
                             const std::string& cursor, int limit);

  // POST .../scale: `capacity` (a whole number or a capacity map) wins over the spec's until
  // the spec's capacity changes. Validation status for a bad capacity.
  void Scale(std::string tenant, std::string name, std::string capacity,
             std::function<void(Result<Environment>)> done);

  // --- for the fleet controller (src/fleet/): synchronous, fenced by the environment's lease
  // (null: unfenced, for tests). Conflict when the lease was lost.

  // Every environment of every tenant.
  Result<std::vector<Environment>> AllEnvironments();
  // Instances by state and environments by phase, over every tenant (for the gauges).
  struct Counts {
    std::map<std::string, int64_t> instances_by_state;
    std::map<std::string, int64_t> environments_by_phase;
  };
  Result<Counts> Count(int64_t now_ms);
  // Sets the scale override as the controller decided (`kind` "idle"), fenced.
  Status SetCapacity(const Environment& env, const std::string& capacity, const std::string& kind,
                     const std::string& reason, const store::Lease* lease);
  // A new instance row in state `starting`, with an event saying why.
  Result<std::string> AddInstance(const Environment& env, int64_t restarts,
                                  const std::string& reason, const store::Lease* lease);
  // What the provider said about an instance it started.
  Status SetProviderInfo(const std::string& id, const std::string& provider_id,
                         const std::string& address, const std::string& provider_data);
  // Moves an instance from one of its current states to `to`, with an event of `kind`.
  // NotFound-free: an instance already elsewhere is left alone (returns false).
  Result<bool> Transition(const Instance& inst, const std::string& to, const std::string& kind,
                          const std::string& reason, const store::Lease* lease);
  // An event of the environment (the controller explaining a failure), fenced.
  Status RecordEvent(const Environment& env, const std::string& kind, const std::string& reason,
                     const store::Lease* lease);
  // The database clock (ms), the controller's notion of now.
  Result<int64_t> Now();

 private:
  // The completion of a write that removed an instance's agent: forgets its buffered heartbeat
  // and this server's cached keys, then calls `done`.
  std::function<void(Status)> InstanceGone(std::string id, std::function<void(Status)> done);

  store::Store& store_;
  const Clock& clock_;
  auth::KeyService& keys_;
  HeartbeatBuffer beats_;
  HoldFn holds_;
  std::function<uint64_t()> holds_version_;
  struct CachedInterval {
    std::chrono::milliseconds interval;
    std::chrono::steady_clock::time_point read_at;
  };
  std::mutex interval_mu_;
  std::map<std::pair<std::string, std::string>, CachedInterval> intervals_;  // GUARDED_BY above
};

}  // namespace drover::env
