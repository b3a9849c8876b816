#pragma once
// The scheduler (docs/schedules.md): fires due schedules on the server holding the leader lease.
// Each firing is first recorded under its (schedule, due time) key, fenced by the leader lease, so
// a due time fires once even when two servers race or the leader changes mid-firing; then its
// action runs and the outcome is recorded. A firing missed while no server ran fires once when
// one does (unless `catch_up: false`). Manual triggers run on whichever server got them.
// Also runs the built-in cleanup every minute. docs/schedules.md.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coord/coordinator.h"
#include "env/services.h"
#include "schedule/schedules.h"

namespace drover::schedule {

struct SchedulerOptions {
  std::string server_id;
  int64_t keep_firings = 1000;  // per schedule, kept by the cleanup
  // Terminated instances older than this are removed by the cleanup.
  std::chrono::milliseconds instance_retention{24 * 3600 * 1000};
  // Change records (the audit log, the change feed's history) older than this are pruned.
  std::chrono::milliseconds audit_retention{std::chrono::hours(24 * 90)};
  // More work for the cleanup, each returning how it went (the change log's pruning: the app).
  std::vector<std::function<Status()>> cleanup_tasks;
  // Starts an execution of a workflow (the start_workflow action; the app wires it to the
  // workflow engine): tenant, workflow, input JSON, idempotency key (one per firing, so a
  // firing run twice starts one execution); `done` gets the execution's id.
  std::function<void(std::string, std::string, std::string, std::string,
                     std::function<void(Result<std::string>)>)>
      start_workflow;
  // How long Stop() waits for actions under way to finish and be recorded.
  std::chrono::milliseconds drain{30000};
};

class Scheduler {
 public:
  Scheduler(ScheduleService& schedules, env::Services& envs, coord::Coordinator& coord,
            store::Store& store, SchedulerOptions options);
  ~Scheduler();  // Stop()
  void Start();
  void Stop();
  // Look again now (the leader lease came or went).
  void Poke();
  // Records a manual firing of `s` (due now, kind manual) and runs its action on this server;
  // `done` gets the firing once it is recorded (or why it could not be).
  void Trigger(const Schedule& s, std::function<void(Result<Firing>)> done);
  // Firing lag and counts in Prometheus text.
  void RenderMetrics(std::string& out) const;

 private:
  struct Impl;
  // Shared with the completion callbacks of actions under way: they may outlive a Stop() that
  // gave up waiting for them.
  std::shared_ptr<Impl> impl_;
};

}  // namespace drover::schedule
