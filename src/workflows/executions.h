#pragma once
// Executions of workflows (docs/workflows.md): accepted with one durable event, then advanced
// by the engine -- Decide() over the read model, its events appended and folded in the same
// transaction, task steps sent to their queues. Workers report attempts; a duplicate report is
// a no-op and a stale one is refused. Thread-safe.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/page.h"
#include "common/status.h"
#include "queues/queues.h"
#include "store/store.h"
#include "workflows/history.h"
#include "workflows/workflows.h"

namespace drover::workflows {

struct Execution {
  std::string id, tenant, workflow;
  int64_t version = 0;
  std::string concurrency_key;
  // The W3C traceparent it runs in (the request's that started it, or its own): its task
  // messages carry it to the workers (docs/logs.md#traces).
  std::string traceparent;
  ExecutionState state;  // the read model
  int64_t updated_at_ms = 0;
};

struct ExecutionFilter {
  std::string workflow;                   // "" all
  std::optional<ExecutionStatus> status;  // nullopt all
};

// The store topic an execution's events notify (SSE streams and blocking reads wait on it).
std::string ExecutionTopic(std::string_view id);

class ExecutionService {
 public:
  ExecutionService(store::Store& store, WorkflowService& workflows, queues::QueueService& queues,
                   const Clock& clock);
  ~ExecutionService();  // Stop()

  // How a `scale` step sets an environment's capacity (the app wires the fleet's environments):
  // tenant, environment, capacity; `done` gets the outcome. Set before Start.
  using ScaleFn =
      std::function<void(std::string, std::string, std::string, std::function<void(Status)>)>;
  void SetScale(ScaleFn scale);

  // Starts the engine (and its sweep of executions due, every second), and the runners of
  // http and scale steps.
  void Start();
  void Stop();

  struct Created {
    Execution execution;
    bool replayed = false;  // an earlier execution with the same idempotency key
  };
  // Accepts an execution of the workflow's current version: `input_json` is its input. With an
  // idempotency key, the first execution created with it is the answer (Validation when the
  // input differs).
  // `traceparent`: the trace it joins ("" or invalid: a trace of its own).
  void Create(std::string tenant, std::string workflow, std::string input_json,
              std::string idempotency_key, std::function<void(Result<Created>)> done,
              std::string traceparent = "");
  Result<Execution> Get(const std::string& tenant, const std::string& id);
  // Newest first.
  Result<Page<Execution>> List(const std::string& tenant, const ExecutionFilter& filter,
                               const std::string& cursor, int limit);
  // Events with seq > after, in order.
  Result<std::vector<Event>> Events(const std::string& tenant, const std::string& id, int64_t after,
                                    int limit);

  // A worker's report of attempt `attempt` of a task step. Conflict when stale (the step ended,
  // or a later attempt was reported); NotFound for an unknown execution or step.
  void Complete(std::string tenant, std::string id, std::string step, int attempt,
                std::string output_json, std::function<void(Result<Execution>)> done);
  void Fail(std::string tenant, std::string id, std::string step, int attempt, std::string error,
            bool retryable, std::function<void(Result<Execution>)> done);
  // A named signal with its payload (once per name: a repeat changes nothing).
  void Signal(std::string tenant, std::string id, std::string name, std::string payload_json,
              std::function<void(Result<Execution>)> done);
  // Conflict when the execution has ended (cancel) or has not failed or been cancelled (retry).
  void Cancel(std::string tenant, std::string id, std::function<void(Result<Execution>)> done);
  void Retry(std::string tenant, std::string id, std::function<void(Result<Execution>)> done);

  // Inside a publish to `topic` (the topic service's hook): starts an execution of every
  // workflow the topic triggers, with `{body, attributes}` of the message as input and, when the
  // message has a dedup id, "topic/TOPIC/DEDUP_ID" as its idempotency key (a second publish
  // with the same dedup id starts nothing). Returns (workflow, execution id, was it a replay).
  struct Started {
    std::string workflow, id;
    bool replayed = false;
  };
  Result<std::vector<Started>> StartFromTopicInTx(store::Tx& tx, const std::string& tenant,
                                                  const std::string& topic,
                                                  const std::string& input_json,
                                                  const std::string& dedup_id);

  // Deletes ended executions older than their workflow's retention (the cleanup schedule);
  // returns how many.
  Result<int64_t> Expire();

  // Advances one execution now (the engine's work; tests call it).
  Status Advance(const std::string& id);
  // Adds every execution due (a wake time passed: sleeps, timeouts, backoffs, executions left
  // by a crash) to the engine; returns how many.
  Result<int> Sweep();
  // Rebuilds the read model of every execution from its event log; returns how many.
  Result<int64_t> Rebuild();

  // Executions started and ended (by status) through this server, per tenant and workflow, in
  // Prometheus text (the metrics registry's collector).
  void RenderMetrics(std::string& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::workflows
