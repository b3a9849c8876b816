#pragma once
// The alert rules' routes: PUT/GET/DELETE /v1/alerts/{name}, GET /v1/alerts and
// GET /v1/alerts/{name}/history.
#include "alerts/alerts.h"
#include "alerts/runner.h"
#include "http/router.h"

namespace drover::alerts {

void AddAlertRoutes(http::Router& router, AlertService& alerts, AlertRunner& runner);

}  // namespace drover::alerts
