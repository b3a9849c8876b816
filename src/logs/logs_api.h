#pragma once
// The log store's HTTP routes (docs/logs.md): agents send lines with
// POST /v1/instances/{id}/logs; GET /v1/logs reads them, and follows them as an event stream.
#include "env/services.h"
#include "http/blocking.h"
#include "http/router.h"
#include "logs/log_store.h"

namespace drover::logs {

void AddLogRoutes(http::Router& router, LogStore& logs, env::Services& envs,
                  http::Waiters& waiters);

}  // namespace drover::logs
