#pragma once
// HTTP routes for workflows and executions (docs/workflows.md):
//   PUT/GET/DELETE /v1/workflows/{name} (?version=N), GET /v1/workflows
//   POST /v1/workflows/{name}/executions {input} (Idempotency-Key) -> 201 + Location
//   GET  /v1/executions/{id} (?index=&wait=: a blocking read), GET /v1/executions?workflow=&status=
//   GET  /v1/executions/{id}/events?after= (JSON; with Accept: text/event-stream a live stream
//        resuming after Last-Event-ID)
//   POST /v1/executions/{id}/cancel | /retry | /signals/{name} {payload}
//   POST /v1/executions/{id}/steps/{step}/complete {attempt, output}
//   POST /v1/executions/{id}/steps/{step}/fail {attempt, error, retryable}
//   POST /v1/admin/rebuild (admin): every execution's read model again from its event log
#include "http/blocking.h"
#include "http/router.h"
#include "store/store.h"
#include "workflows/executions.h"
#include "workflows/workflows.h"

namespace drover::workflows {

void AddWorkflowRoutes(http::Router& router, WorkflowService& workflows,
                       ExecutionService& executions, store::Store& store, http::Waiters& waiters);

}  // namespace drover::workflows
