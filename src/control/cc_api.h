#pragma once
// The control center's read-only views (SPEC §4), for agents and watchers:
//   GET|HEAD /v1/cc/agent?environment=E    the effective cc-a-* set
//   GET|HEAD /v1/cc/watcher?environment=E  the effective cc-w-* set
// The environment's value wins over the global one; "" and "-" mean unset and are left out.
// The set comes as a JSON object {key: value} and as response headers `key: value` (so an agent
// can also be pointed at any HTTP endpoint that sets such headers); a value that cannot be a
// header value (control characters, or over 8 KiB) is in the body only. Blocking reads
// (?index=&wait=) and ETags as for variables.
#include "control/variables.h"
#include "http/blocking.h"
#include "http/router.h"

namespace drover::control {

void AddControlCenterRoutes(http::Router& router, VariableService& vars, store::Store& store,
                            http::Waiters& waiters);

// Whether `v` can be sent as an HTTP header value as it is.
bool IsHeaderSafe(std::string_view v);

}  // namespace drover::control
