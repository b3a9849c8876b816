#pragma once
// Environments as records (docs/environments.md): the declarative spec, the join token agents use,
// the capacity in force and where it comes from. Their instances, runs and event history have
// services of their own (env/instances.h, env/runs.h, env/event_log.h); env/services.h holds the
// four together. Thread-safe; writes are group-committed.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "auth/keys.h"
#include "common/clock.h"
#include "common/status.h"
#include "env/records.h"
#include "store/lease.h"
#include "store/store.h"

namespace drover::env {

class EnvironmentService {
 public:
  EnvironmentService(store::Store& store, const Clock& clock, auth::KeyService& keys)
      : store_(store), clock_(clock), keys_(keys) {}
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

  // POST .../scale: `capacity` (a whole number or a capacity map) wins over the spec's until
  // the spec's capacity changes. Validation status for a bad capacity.
  void Scale(std::string tenant, std::string name, std::string capacity,
             std::function<void(Result<Environment>)> done);

  // Proxied traffic reached the environment (the gateway calls it at most every few seconds
  // per environment): its idle timeout runs from now. A change, so the controller re-reads it.
  void Touch(std::string tenant, std::string name, std::function<void(Status)> done);
  // A request arrived for an environment whose capacity in force is 0 (stopped, or closed by
  // its idle timeout): the scale override goes, so the spec's capacity applies again, with an
  // event saying why. Unavailable when the spec's own capacity is 0 (nothing to wake).
  void Wake(std::string tenant, std::string name, std::string reason,
            std::function<void(Result<Environment>)> done);

  // Every environment of every tenant.
  Result<std::vector<Environment>> AllEnvironments();
  // Instances by state and environments by phase, over every tenant (for the gauges).
  struct Counts {
    std::map<InstanceState, int64_t> instances_by_state;
    std::map<Phase, int64_t> environments_by_phase;
    std::map<std::pair<std::string, std::string>, Phase> phases;  // by (tenant, name)
    // Unhealthy or failed instances, by (tenant, environment).
    std::map<std::pair<std::string, std::string>, int64_t> broken;
  };
  Result<Counts> Count(int64_t now_ms);
  // Sets the scale override as the fleet controller decided (`kind` "idle"), fenced by the
  // environment's lease (null: unfenced, for tests); Conflict when the lease was lost or the
  // environment changed since it was read.
  Status SetCapacity(const Environment& env, const std::string& capacity, const std::string& kind,
                     const std::string& reason, const store::Lease* lease);
  // The database clock (ms), the controller's notion of now.
  Result<int64_t> Now();

 private:
  store::Store& store_;
  const Clock& clock_;
  auth::KeyService& keys_;
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
