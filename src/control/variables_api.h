#pragma once
// HTTP routes for variables (docs/environments.md):
//   PUT    /v1/variables/{key}   {value, environment?}        201 created / 200 replaced
//   GET    /v1/variables/{key}?environment=&index=&wait=      200 | 404
//   GET    /v1/variables?prefix=&environment=&limit=&cursor=&index=&wait=
//                                                             200 {items, next_cursor, index}
//   DELETE /v1/variables/{key}?environment=                   204 | 404
// Every response carries X-Drover-Index: the global change index. The GETs are blocking reads
// with ?index= (http/blocking.h), woken by changes of the topic "variables".
#include "control/variables.h"
#include "http/blocking.h"
#include "http/router.h"

namespace drover::control {

void AddVariableRoutes(http::Router& router, VariableService& vars, store::Store& store,
                       http::Waiters& waiters);

}  // namespace drover::control
