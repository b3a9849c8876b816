#pragma once
// The fleet controller's decisions as a pure function (docs/fleet.md): from an environment, its
// instances as read, what the provider and the clock were observed to say, and the database
// time, which actions bring it to its desired state and when to look again. No store, no
// provider, no clock: the executor (fleet/controller.cc) gathers the observations, applies the
// actions in order, and plans again whenever the world moved under it. Table tests in
// plan_test.cc.
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "env/records.h"

namespace drover::fleet {

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// How a provider runs an environment.
enum class Mode {
  kJoin,       // starts nothing: agents join by themselves (static)
  kInstances,  // starts and stops each instance (local, exec with create/delete)
  kGroup,      // sizes a group that starts its own machines (exec with set_capacity)
};

struct Observations {
  Mode mode = Mode::kJoin;
  // The capacity in force (nullopt: the capacity map leaves this group alone), and when a
  // window or the watcher may next begin or end holding it.
  std::optional<int64_t> desired;
  std::optional<int64_t> desired_changes_at;
  // The provider's word on each instance's process, by instance id (the local provider watches
  // its agents); an instance missing here is judged by heartbeats alone.
  std::map<std::string, bool> alive;
  // The provider ids its list command printed (nullopt: no list command, or the call failed:
  // nothing is judged gone then).
  std::optional<std::set<std::string>> listed;
  // No starts and no set_capacity before this (database ms): backing off after failures.
  int64_t backoff_until = 0;
  // Group mode: the size this server set last (nullopt: not yet since it took the lease).
  std::optional<int64_t> applied_group_size;
};

struct PlanOptions {
  // How often instances whose process the provider watches are looked at again.
  int64_t resync_ms = 1000;
  // Heartbeats another server buffers arrive within this (env/heartbeats.h).
  int64_t heartbeat_flush_ms = 1000;
};

enum class ActionKind {
  kMarkUnhealthy,  // instance: running/starting -> unhealthy (reason says why)
  kFail,           // instance: unhealthy -> failed, and the provider deletes what is left
  kReplace,        // instance: unhealthy -> terminating -> terminated via the provider
  kIdle,           // the environment scales itself to 0 (scale override "0", event kind idle)
  kStart,          // a new instance (number = its restart count)
  kTerminate,      // instance: -> terminating -> terminated via the provider (scale down)
  kSetGroupSize,   // group mode: set_capacity to `number`
};
std::string_view Name(ActionKind k);

struct Action {
  ActionKind kind;
  env::Instance instance;  // as the action finds it (its state is the one it moves from)
  std::string reason;
  int64_t number = 0;
};

struct Plan {
  std::vector<Action> actions;
  // When the environment needs a look again by the clock alone (a heartbeat deadline, a backoff,
  // the idle timeout, a window); kNever when only a change can make a difference. Never at or
  // before `now` when there are no actions (that would plan the same again at once).
  int64_t due = kNever;
  // For instances judged silent now: how late after their deadline, in seconds (a metric).
  std::vector<double> deadline_lags;
};

// The instances given are the environment's non-terminated ones, oldest first. A spec that does
// not parse or a provider this server does not run are the executor's to handle (nothing is
// planned for them).
Plan PlanReconcile(const env::Environment& e, const std::vector<env::Instance>& instances,
                   const Observations& obs, int64_t now, const PlanOptions& options = {});

// A provider's next attempt after `attempts` failures in a row: 2 s, 4 s, ... up to 5 min.
int64_t BackoffAfter(int attempts);

}  // namespace drover::fleet
