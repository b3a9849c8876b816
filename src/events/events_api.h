#pragma once
// The change log's routes: `GET /v1/events`, the live change feed (server-sent events, or a
// long-poll JSON page), and `GET /v1/audit`, the API calls made, newest first. docs/events.md.
#include "events/change_log.h"
#include "http/blocking.h"
#include "http/router.h"

namespace drover::events {

void AddEventRoutes(http::Router& router, ChangeLog& log, store::Store& store,
                    http::Waiters& waiters);

}  // namespace drover::events
