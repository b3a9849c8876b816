#pragma once
// The environment capability's services together, as the routes and the fleet controller use
// them: environments, their instances, runs and event history.
#include "env/environments.h"
#include "env/event_log.h"
#include "env/instances.h"
#include "env/runs.h"

namespace drover::env {

struct Services {
  Services(store::Store& store, const Clock& clock, auth::KeyService& keys)
      : environments(store, clock, keys),
        instances(store, clock, keys, environments),
        runs(store, clock),
        events(store) {}
  EnvironmentService environments;
  InstanceService instances;
  RunService runs;
  EventLog events;
};

}  // namespace drover::env
