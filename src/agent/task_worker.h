#pragma once
// `drover agent --worker QUEUE` (docs/workflows.md): takes task steps of workflows from a queue
// and runs their commands in the agent's checkout -- the input as JSON on stdin and in
// DROVER_INPUT, the output from the last JSON line of stdout -- then reports the attempt
// (complete or fail) and acks. `concurrency` tasks at once, each on its own slot thread; a
// keeper thread extends the visibility of tasks still running, so a long task is not handed to
// another worker while this one lives (and is, after its visibility timeout, when it dies).
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace drover::agent {

struct TaskWorkerOptions {
  std::string server;                  // http://host:port
  std::function<std::string()> token;  // the agent's key (it may change on a rejoin)
  std::string queue;
  int concurrency = 1;
  std::string work_dir;                       // scratch files and the last task logs
  std::function<std::string()> checkout_dir;  // where commands run ("" or unset: work_dir)
  std::vector<std::string> env;               // the environment commands start from
  std::chrono::milliseconds task_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds kill_grace{std::chrono::seconds(10)};
  std::chrono::milliseconds visibility{std::chrono::seconds(60)};  // held, extended while running
  std::chrono::seconds wait{10};                                   // each receive's long poll
  // Where a task's stderr goes when it ended (the agent's log shipper): the text and the
  // task's trace id. Unset: kept in the work dir only.
  std::function<void(const std::string& text, const std::string& trace_id)> ship_log{};
};

class TaskWorker {
 public:
  explicit TaskWorker(TaskWorkerOptions options);
  ~TaskWorker();  // Stop()
  void Start();
  // Stops taking tasks; tasks under way are stopped (SIGTERM, then SIGKILL after the grace),
  // not reported and not acked: their messages come back after their visibility timeout.
  void Stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace drover::agent
