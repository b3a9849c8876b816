#pragma once
// HTTP routes for gateway routes (docs/gateway.md):
//   PUT/GET/DELETE /v1/routes/{name}, GET /v1/routes
//   POST /v1/environments/{name}/open -> 201 {url, expires_at}: a login URL for browsers
#include "env/services.h"
#include "gateway/routes.h"
#include "gateway/sessions.h"
#include "http/router.h"

namespace drover::gateway {

void AddRouteRoutes(http::Router& router, RouteService& routes, SessionService& sessions,
                    env::Services& envs);

}  // namespace drover::gateway
