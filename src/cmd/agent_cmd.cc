// `drover agent`: runs on each instance (docs/agent.md).
#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "agent/agent.h"
#include "cmd/commands.h"
#include "common/duration.h"
#include "common/files.h"

namespace drover::cmd {

void AddAgentCommand(CLI::App& app, Run& run) {
  static agent::AgentOptions o;
  static std::string run_timeout = "1h", stop_grace = "30s", kill_grace = "10s", heartbeat,
                     watcher_timeout = "60s", task_timeout = "1h", task_visibility = "60s";
  auto* a = app.add_subcommand(
      "agent",
      "Run the agent: read the cc-a-* set, fetch the Git repository, run pre/main/post, report.");
  a->add_option("--addr,--server", o.server,
                "drover server URL, http://host:port (also DROVER_ADDR or DROVER_SERVER)");
  static std::string join_token_file;
  a->add_option("--join-token", o.join_token,
                "the environment's join token (better: DROVER_JOIN_TOKEN or --join-token-file, "
                "which ps does not show)")
      ->envname("DROVER_JOIN_TOKEN");
  a->add_option("--join-token-file", join_token_file, "a file holding the join token");
  a->add_option("--environment,-e", o.environment, "the environment to join and read")
      ->envname("DROVER_ENVIRONMENT");
  a->add_option("--token", o.token, "an agent key to use instead of joining")
      ->envname("DROVER_AGENT_TOKEN");
  a->add_option("--instance-id", o.instance_id,
                "join as this instance (set by the local provider for the instances it starts)");
  a->add_option("--work-dir", o.work_dir, "work dir: checkouts, logs, state")
      ->capture_default_str();
  a->add_flag("--once", o.once, "one run, then exit (for cron); exit 1 when it failed");
  a->add_option(
      "--defaults", o.defaults_file,
      "YAML of cc-a-* values, used when no endpoint answers and for keys it leaves unset");
  a->add_option("--cc", o.cc_urls,
                "control-center endpoint URL (repeatable; the first that answers wins)");
  a->add_option("--allow", o.allow, "keys the control center may set (others: --defaults only)")
      ->delimiter(',');
  a->add_option("--verify-key", o.verify_key,
                "ed25519 public key (PEM): accept only sets signed with its private key");
  a->add_option("--run-timeout", run_timeout, "default time limit of a run (cc-a-timeout wins)")
      ->capture_default_str();
  a->add_option("--stop-grace", stop_grace, "on SIGTERM, time a run may go on before it is killed")
      ->capture_default_str();
  a->add_option("--kill-grace", kill_grace, "time between SIGTERM and SIGKILL of a run's processes")
      ->capture_default_str();
  a->add_option("--heartbeat-interval", heartbeat,
                "heartbeat period (default: the environment's health.heartbeat_interval)");
  a->add_flag("--watcher", o.watcher,
              "apply cc-a-desired-capacity (for --cloud/--region) with --watcher-command");
  a->add_option("--watcher-command", o.watcher_command,
                "set-capacity command, run with sh -c and JSON on stdin (e.g. "
                "contrib/providers/aws-asg/set-capacity.sh)");
  a->add_option("--cloud", o.cloud, "this instance's cloud, to resolve a capacity map (aws, gcp)")
      ->envname("DROVER_CLOUD");
  a->add_option("--region", o.region, "this instance's region, to resolve a capacity map")
      ->envname("DROVER_REGION");
  a->add_option("--watcher-timeout", watcher_timeout, "time limit of the watcher command")
      ->capture_default_str();
  a->add_option(
      "--worker", o.worker_queue,
      "also run workflow task steps from this queue, in the checkout (docs/workflows.md)");
  a->add_option("--concurrency", o.worker_concurrency, "tasks run at once with --worker")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  a->add_option("--task-timeout", task_timeout, "time limit of one task with --worker")
      ->capture_default_str();
  a->add_option("--task-visibility", task_visibility,
                "with --worker: how long a task stays hidden from other workers if this agent "
                "dies (extended while it runs)")
      ->capture_default_str();
  a->add_option("--keep-logs", o.keep_logs, "run logs kept in the work dir")->capture_default_str();
  a->add_option("--ship-log", o.ship_logs,
                "send this file's new lines to the server's log store (repeatable; rotation and "
                "truncation are followed)");
  a->callback([&run] {
    run = [] {
      auto dur = [](const char* flag, const std::string& v, std::chrono::milliseconds* out) {
        if (v.empty()) return true;
        auto d = ParseDuration(v);
        if (!d) {
          std::fprintf(stderr, "error: %s: '%s' is not a duration like 30s, 10m or 1h\n", flag,
                       v.c_str());
          return false;
        }
        *out = *d;
        return true;
      };
      if (!dur("--run-timeout", run_timeout, &o.run_timeout) ||
          !dur("--stop-grace", stop_grace, &o.stop_grace) ||
          !dur("--kill-grace", kill_grace, &o.kill_grace) ||
          !dur("--heartbeat-interval", heartbeat, &o.heartbeat_interval) ||
          !dur("--watcher-timeout", watcher_timeout, &o.watcher_timeout) ||
          !dur("--task-timeout", task_timeout, &o.task_timeout) ||
          !dur("--task-visibility", task_visibility, &o.task_visibility)) {
        return 2;
      }
      // Like every other subcommand: the server from DROVER_ADDR (DROVER_SERVER too).
      if (o.server.empty()) {
        for (const char* name : {"DROVER_ADDR", "DROVER_SERVER"}) {
          if (const char* v = std::getenv(name); v && *v) {
            o.server = v;
            break;
          }
        }
      }
      if (!join_token_file.empty()) {
        if (!o.join_token.empty()) {
          std::fprintf(stderr, "error: give --join-token or --join-token-file, not both\n");
          return 2;
        }
        auto t = ReadFile(join_token_file);
        if (!t) {
          std::fprintf(stderr, "error: --join-token-file: cannot read %s\n",
                       join_token_file.c_str());
          return 2;
        }
        std::string_view token = *t;
        while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
          token.remove_suffix(1);
        }
        o.join_token = std::string(token);
      }
      // Runs and watcher commands inherit the environment: the credentials stay with the agent.
      ::unsetenv("DROVER_JOIN_TOKEN");
      ::unsetenv("DROVER_AGENT_TOKEN");
      if (o.server.empty() && o.cc_urls.empty() && o.defaults_file.empty()) {
        std::fprintf(stderr,
                     "error: give --addr (with a join token and --environment), --cc URL, or "
                     "--defaults FILE\n");
        return 2;
      }
      if (o.watcher && o.watcher_command.empty()) {
        std::fprintf(stderr,
                     "error: --watcher needs --watcher-command (a set-capacity script, see "
                     "contrib/providers/)\n");
        return 2;
      }
      if (!o.watcher && !o.watcher_command.empty()) {
        std::fprintf(stderr, "error: --watcher-command is used only with --watcher\n");
        return 2;
      }
      if (o.keep_logs < 1) {
        std::fprintf(stderr, "error: --keep-logs must be at least 1\n");
        return 2;
      }
      return agent::RunAgent(o);
    };
  });
}

}  // namespace drover::cmd
