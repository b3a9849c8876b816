#pragma once
// HTTP routes for variables (SPEC §4, CRUD):
//   PUT    /v1/variables/{key}   {value, environment?}        201 created / 200 replaced
//   GET    /v1/variables/{key}?environment=                   200 | 404
//   GET    /v1/variables?prefix=&environment=&limit=&cursor=  200 {items, next_cursor}
//   DELETE /v1/variables/{key}?environment=                   204 | 404
// Every response carries X-Drover-Index: the global change index.
#include "control/variables.h"
#include "http/router.h"

namespace drover::control {

void AddVariableRoutes(http::Router& router, VariableService& vars, store::Store& store);

}  // namespace drover::control
