#pragma once
// HTTP routes for gateway routes (docs/gateway.md):
//   PUT/GET/DELETE /v1/routes/{name}, GET /v1/routes
#include "gateway/routes.h"
#include "http/router.h"

namespace drover::gateway {

void AddRouteRoutes(http::Router& router, RouteService& routes);

}  // namespace drover::gateway
