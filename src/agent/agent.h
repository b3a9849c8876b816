#pragma once
// `drover agent` (docs/agent.md): reads the effective cc-a-* set from the control center (or a
// defaults file), fetches the Git repository it names, runs pre/main/post through the shell or
// Ansible, and reports each run; a separate thread sends heartbeats and delivers queued reports.
// As a daemon it runs every cc-a-interval and wakes early when the set changes (a blocking
// query); with --once it runs once (for cron).
#include <chrono>
#include <string>
#include <vector>

namespace drover::agent {

struct AgentOptions {
  std::string server;      // http://host:port of a drover server ("" = none)
  std::string join_token;  // joins `environment` with it when there is no saved identity
  std::string environment;
  std::string token;        // an existing agent key, instead of joining
  std::string instance_id;  // join as this instance (one the controller started for us)
  std::string work_dir = "./drover-agent";
  bool once = false;
  std::string defaults_file;         // YAML of cc-a-* values
  std::vector<std::string> cc_urls;  // endpoints of the set, first answer wins
  std::vector<std::string> allow;    // keys the control center may set (empty: all)
  std::string verify_key;            // ed25519 public key (PEM): signed sets only
  std::chrono::milliseconds run_timeout{std::chrono::hours(1)};
  std::chrono::milliseconds stop_grace{std::chrono::seconds(30)};  // SIGTERM: then kill the run
  std::chrono::milliseconds kill_grace{std::chrono::seconds(10)};  // SIGTERM -> SIGKILL
  std::chrono::milliseconds heartbeat_interval{0};                 // 0: the environment's
  int keep_logs = 20;                                              // run logs kept in the work dir
  // Files whose new lines go to the server's log store (--ship-log), besides the run logs.
  std::vector<std::string> ship_logs;
  // The agent-side watcher (agent/watcher.h): applies cc-a-desired-capacity for cloud/region
  // with `watcher_command` (a set-capacity script: JSON on stdin, as the exec provider's).
  bool watcher = false;
  std::string watcher_command;
  std::string cloud, region;
  std::chrono::milliseconds watcher_timeout{std::chrono::seconds(60)};
  // --worker: also take workflow task steps from this queue and run them in the checkout
  // (agent/task_worker.h), `worker_concurrency` at once, each for at most `task_timeout`.
  std::string worker_queue;
  int worker_concurrency = 1;
  std::chrono::milliseconds task_timeout{std::chrono::hours(1)};
  // How long a received task stays hidden from other workers if this agent dies (it is
  // extended while the task runs).
  std::chrono::milliseconds task_visibility{std::chrono::seconds(60)};
};

// Runs the agent until SIGTERM/SIGINT (daemon) or one run (--once). Returns the exit code:
// 0, or for --once 1 when the run failed; 2 for bad options.
int RunAgent(const AgentOptions& options);

}  // namespace drover::agent
