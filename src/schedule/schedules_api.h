#pragma once
// HTTP routes of schedules (docs/schedules.md):
//   PUT|GET|DELETE /v1/schedules/{name}   (JSON or YAML; GET shows next_fires, 5 RFC 3339 UTC)
//   GET  /v1/schedules
//   POST /v1/schedules/{name}/trigger     -> 202, the firing (kind manual)
//   GET  /v1/schedules/{name}/firings     newest first
#include "http/router.h"
#include "schedule/scheduler.h"
#include "schedule/schedules.h"

namespace drover::schedule {

// `envs` tells whether the environment a schedule names exists (a warning in the answer when not:
// it may be created later).
void AddScheduleRoutes(http::Router& router, ScheduleService& schedules, Scheduler& scheduler,
                       env::EnvironmentService& envs);

}  // namespace drover::schedule
