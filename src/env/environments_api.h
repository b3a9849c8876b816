#pragma once
// HTTP routes of environments and instances (docs/environments.md):
//   PUT|GET|DELETE /v1/environments/{name}   (JSON or YAML spec; GET blocks with ?index=)
//   GET  /v1/environments, .../{name}/instances, .../{name}/events
//   POST /v1/environments/{name}/join         (join token as the bearer) -> instance + agent key
//   GET  /v1/instances/{id}
//   POST /v1/instances/{id}/heartbeat, POST|GET /v1/instances/{id}/runs,
//   GET  /v1/instances/{id}/runs/{n}, GET /v1/instances/{id}/runs/{n}/log
#include "env/services.h"
#include "http/blocking.h"
#include "http/router.h"

namespace drover::env {

void AddEnvironmentRoutes(http::Router& router, Services& envs, store::Store& store,
                          http::Waiters& waiters, ProviderPolicy providers);

}  // namespace drover::env
