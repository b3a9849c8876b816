#pragma once
// HTTP routes for API keys (docs/api.md):
//   POST   /v1/keys {name, role, tenant?, rate_limit?: {rps, burst}} -> 201 {id, key, ...}
//   GET    /v1/keys?tenant=&limit=&cursor=                         -> 200 {items, next_cursor}
//   DELETE /v1/keys/{id}                                           -> 204 | 404
// The secret appears once, in the 201 body.
#include "auth/keys.h"
#include "http/router.h"

namespace drover::auth {

void AddKeyRoutes(http::Router& router, KeyService& keys);

}  // namespace drover::auth
