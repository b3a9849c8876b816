#pragma once
// Instances of environments (docs/environments.md): agents join and report heartbeats, the fleet
// controller adds instances and moves them between states, an agent that stops leaves. Every
// state change is an event of the environment and a change record. Thread-safe; writes are
// group-committed.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "auth/keys.h"
#include "common/clock.h"
#include "common/status.h"
#include "env/environments.h"
#include "env/heartbeats.h"
#include "env/records.h"
#include "http/principal.h"
#include "store/lease.h"
#include "store/store.h"

namespace drover::env {

class InstanceService {
 public:
  InstanceService(store::Store& store, const Clock& clock, auth::KeyService& keys,
                  EnvironmentService& environments)
      : store_(store),
        clock_(clock),
        keys_(keys),
        environments_(environments),
        beats_(store, clock) {}
  // Writes the buffered heartbeats and stops buffering (before the store closes).
  void Stop() { beats_.Stop(); }

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
  // The state of instance `id`; nullopt when there is no such instance.
  Result<std::optional<InstanceState>> StateOf(const std::string& id);

  // A heartbeat of instance `id` from `caller`; answers the environment's heartbeat interval.
  // The same heartbeat again from the instance's own agent key, while it was last seen running,
  // is recorded without a store read; one with news is written at once (a starting or unhealthy
  // instance becomes running); one without is buffered (env/heartbeats.h).
  void RecordHeartbeat(const http::Principal& caller, const std::string& id, Heartbeat hb,
                       std::function<void(Result<std::chrono::milliseconds>)> done);
  // The instance's agent stopped for good (SIGTERM): it is terminated, not unhealthy, and its
  // agent key is revoked. Its key only when the controller is already terminating it (it then
  // finishes with its own reason) or it is gone; OK either way.
  void Leave(Instance inst, std::string reason, std::function<void(Status)> done);
  // Forgets an instance: its row, runs and agent key. Conflict for a live instance that a
  // provider started (scale down, or let the controller replace it, instead).
  void Forget(Instance inst, std::function<void(Status)> done);
  // Removes instances terminated more than `retention_ms` ago, with their runs; how many.
  Result<int64_t> PruneTerminated(int64_t retention_ms);

  // --- for the fleet controller (src/fleet/): synchronous, fenced by the environment's lease
  // (null: unfenced, for tests). Conflict when the lease was lost.

  // A new instance row in state `starting`, with an event saying why.
  Result<std::string> AddInstance(const Environment& env, int64_t restarts,
                                  const std::string& reason, const store::Lease* lease);
  // What the provider said about an instance it started.
  Status SetProviderInfo(const std::string& id, const std::string& provider_id,
                         const std::string& address, const std::string& provider_data);
  // Moves an instance from the state it was read in to `to`, with an event of `kind`.
  // An instance already elsewhere (a heartbeat came in between) is left alone: false.
  Result<bool> Transition(const Instance& inst, InstanceState to, const std::string& kind,
                          const std::string& reason, const store::Lease* lease);

 private:
  void WriteHeartbeat(Instance inst, Heartbeat hb, std::function<void(Status)> done);
  // The completion of a write that removed an instance's agent: forgets its buffered heartbeat
  // and this server's cached keys, then calls `done`.
  std::function<void(Status)> InstanceGone(std::string id, std::function<void(Status)> done);

  store::Store& store_;
  const Clock& clock_;
  auth::KeyService& keys_;
  EnvironmentService& environments_;
  HeartbeatBuffer beats_;
};

}  // namespace drover::env
