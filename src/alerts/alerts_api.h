#pragma once
// The alert rules' routes: PUT/GET/DELETE /v1/alerts/{name} and GET /v1/alerts.
#include "alerts/alerts.h"
#include "http/router.h"

namespace drover::alerts {

void AddAlertRoutes(http::Router& router, AlertService& alerts);

}  // namespace drover::alerts
