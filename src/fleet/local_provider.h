#pragma once
// The `local` provider: each instance is a `drover agent` child process of the server, in its own
// work dir (DATA_DIR/instances/<id>/) and process group, with a free loopback port exported as
// PORT and its output in agent.log there. The pid and its start time (from /proc) identify it, so
// a restarted server re-adopts the agents that still run and the controller replaces the rest.
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "fleet/provider.h"

namespace drover::fleet {

struct LocalOptions {
  std::string data_dir;           // instances live under DATA_DIR/instances/
  std::string server_url;         // what the agents join (this server)
  std::string binary;             // the drover binary (default: /proc/self/exe)
  bool stop_with_server = false;  // --local-instances=stop: agents die with the server
};

class LocalProvider final : public Provider {
 public:
  explicit LocalProvider(LocalOptions options);
  ~LocalProvider() override;
  std::string_view Name() const override { return "local"; }
  Mode ModeFor(const env::Environment&) const override { return Mode::kInstances; }
  // Called (on a thread of its own) when an agent it started or saw running exits: the
  // controller looks at once instead of at its next poll. Set before the first Create.
  void SetOnChange(std::function<void()> fn) override;
  void SetServerUrl(const std::string& url) override;
  Result<Started> Create(const env::Environment& env, const std::string& instance_id) override;
  Status Delete(const env::Environment& env, const env::Instance& inst) override;
  std::optional<bool> Alive(const env::Environment& env, const env::Instance& inst) override;
  // Reaps exited agents, then stops and removes the instance dirs for which `live(id)` says
  // false (instances deleted with their environment, terminated, or never recorded); nullopt
  // (cannot tell) keeps it.
  void Sweep(const std::function<std::optional<bool>(const std::string& id)>& live) override;
  // Stops every agent it started (--local-instances=stop at shutdown).
  void StopAll() override;

 private:
  // Watches `pid` for its exit (a pidfd in the epoll set), once.
  void Watch(int pid);
  void WatchLoop();
  LocalOptions o_;
  std::mutex mu_;
  std::function<void()> on_exit_;
  std::mutex watch_mu_;
  std::map<int, int> watched_;  // GUARDED_BY(watch_mu_): pid -> pidfd
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: ends the watch thread
  std::thread watcher_;
};

// The start time of process `pid` (field 22 of /proc/PID/stat), or -1 when there is none.
int64_t ProcessStartTime(int pid);

}  // namespace drover::fleet
