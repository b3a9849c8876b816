#pragma once
// The server's request-handling core, assembled: every route of every capability on one router,
// the services behind them, metrics and the pipeline. The transport (http::Server) and the
// process (cmd/server_cmd.cc) sit outside; tests can drive the pipeline without sockets.
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "alerts/alerts.h"
#include "alerts/runner.h"
#include "auth/keys.h"
#include "common/clock.h"
#include "control/cc_api.h"
#include "control/variables.h"
#include "coord/coordinator.h"
#include "env/services.h"
#include "events/change_log.h"
#include "fleet/controller.h"
#include "gateway/proxy.h"
#include "gateway/routes.h"
#include "http/blocking.h"
#include "http/metrics.h"
#include "http/pipeline.h"
#include "http/rate_limiter.h"
#include "http/router.h"
#include "logs/log_store.h"
#include "metrics/registry.h"
#include "queues/queues.h"
#include "queues/topics.h"
#include "runtime/work_queue.h"
#include "schedule/scheduler.h"
#include "schedule/schedules.h"
#include "schedule/windows.h"
#include "store/store.h"
#include "workflows/executions.h"
#include "workflows/workflows.h"

namespace drover::api {

class App {
 public:
  // `coord` names this server among those sharing the database; its coordinator is started by
  // the server process (cmd/server_cmd.cc), not here.
  App(store::Store& store, const Clock& clock, http::PipelineOptions options,
      coord::CoordinatorOptions coord = {}, control::ControlCenterOptions cc = {},
      fleet::ControllerOptions fleet = {}, schedule::SchedulerOptions schedules = {},
      alerts::RunnerOptions alert_options = {}, logs::LogOptions log_options = {});
  ~App();

  http::Pipeline& pipeline() { return *pipeline_; }
  http::Metrics& metrics() { return *metrics_; }
  // Every metric of the server: what GET /metrics renders.
  metrics::Registry& registry() { return registry_; }
  // Starts refreshing the gauges read from the store (instances by state, environments by
  // phase, schedules and firings): a second after changes, and every 15 s, off the request
  // path (/metrics itself never reads the store).
  void StartGauges();
  const http::Router& router() const { return router_; }
  auth::KeyService& keys() { return keys_; }
  coord::Coordinator& coordinator() { return coordinator_; }
  env::Services& environments() { return env_; }
  // Started by the server process once it listens (local agents need its URL).
  fleet::Controller& controller() { return *controller_; }
  // Started by the server process too; fires schedules while this server is the leader.
  schedule::Scheduler& scheduler() { return *scheduler_; }
  alerts::AlertRunner& alert_runner() { return *alert_runner_; }
  logs::LogStore& logs() { return *logs_; }
  // Parked blocking reads; Shutdown() answers them when the server stops.
  http::Waiters& waiters() { return waiters_; }
  events::ChangeLog& change_log() { return change_log_; }
  queues::QueueService& queues() { return *queues_; }
  // Started by the server process: advances executions (and sweeps those due every second).
  workflows::ExecutionService& executions() { return *executions_; }
  // Started by the server process: the gateway's active health checks.
  gateway::Proxy& proxy() { return *proxy_; }

 private:
  void AddSystemRoutes();
  void AddClusterRoute();
  void RegisterMetrics();
  runtime::Outcome RefreshGauges();
  // Writes a refused mutating call to the audit log (PipelineOptions::on_refused).
  void RecordRefusal(const http::Request& req, const http::Route* route,
                     const http::Response& resp);

  store::Store& store_;
  const Clock& clock_;
  const std::chrono::steady_clock::time_point started_;
  const std::string started_at_;
  http::Router router_;
  auth::KeyService keys_;
  http::RateLimiter limiter_;
  control::VariableService variables_;
  env::Services env_;
  std::unique_ptr<control::ControlCenterViews> cc_views_;
  coord::CoordinatorOptions WithControllerPokes(coord::CoordinatorOptions o);
  coord::Coordinator coordinator_;
  std::unique_ptr<fleet::Controller> controller_;
  schedule::ScheduleService schedules_;
  std::unique_ptr<schedule::Scheduler> scheduler_;
  std::unique_ptr<schedule::WindowBook> windows_;
  std::unique_ptr<queues::QueueService> queues_;
  std::unique_ptr<queues::TopicService> topics_;
  std::unique_ptr<workflows::WorkflowService> workflows_;
  std::unique_ptr<workflows::ExecutionService> executions_;
  http::Waiters waiters_;
  events::ChangeLog change_log_;
  metrics::Registry registry_;
  std::unique_ptr<http::Metrics> metrics_;
  metrics::Family<metrics::Gauge>* instances_by_state_ = nullptr;
  metrics::Family<metrics::Gauge>* environments_by_phase_ = nullptr;
  metrics::Family<metrics::Gauge>* firings_by_status_ = nullptr;
  metrics::Gauge* schedules_total_ = nullptr;
  std::mutex gauges_mu_;
  std::set<std::string> seen_statuses_;  // GUARDED_BY(gauges_mu_)
  // Per environment and schedule series, rendered whole at each refresh (so one deleted goes).
  std::string resource_gauges_;  // GUARDED_BY(gauges_mu_)
  std::unique_ptr<runtime::WorkQueue> gauges_;
  int gauges_sub_ = -1;
  std::unique_ptr<alerts::AlertService> alerts_;
  std::unique_ptr<alerts::AlertRunner> alert_runner_;
  std::unique_ptr<logs::LogStore> logs_;
  std::unique_ptr<gateway::RouteService> routes_;
  std::unique_ptr<gateway::SessionService> sessions_;
  std::unique_ptr<gateway::Proxy> proxy_;  // after registry_: gone before its collector is
  std::unique_ptr<http::Pipeline> pipeline_;
};

// The OpenAPI 3.1 document served at /v1/openapi.json (src/api/openapi.json, embedded).
std::string_view OpenApiDocument();

}  // namespace drover::api
