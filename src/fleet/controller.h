#pragma once
// The fleet controller (docs/fleet.md): keeps each environment at its desired size. One per server,
// no per-environment process: the coordinator spreads one lease per environment over the servers,
// and this server reconciles the environments whose lease it holds. A reconcile is
// level-triggered (it re-reads everything and acts on the difference; running it twice does
// nothing new) and every write it makes is fenced by the lease. It runs when environments change
// (in-process and cross-server notifications), when an environment is due by the clock (a
// heartbeat deadline, a backoff, the idle timeout) and on a periodic full resync. Each
// environment is a key of a work queue (runtime/work_queue.h); what to do is decided by the pure
// planner (fleet/plan.h) and applied here through the provider and the store. docs/fleet.md.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "coord/coordinator.h"
#include "env/services.h"
#include "fleet/local_provider.h"
#include "fleet/provider.h"
#include "store/store.h"

namespace drover::fleet {

struct ControllerOptions {
  // How often a provider that watches its instances' processes (local) is asked about them.
  std::chrono::milliseconds resync{1000};
  // How often every held environment is reconciled, changed or not (a safety net: changes and
  // deadlines wake the controller by themselves).
  std::chrono::milliseconds full_resync{30000};
  LocalOptions local;  // server_url may be set later with SetServerUrl
  // The providers this server runs: an environment of another provider starts nothing here
  // (an event says why).
  env::ProviderPolicy providers;
  // Providers added to the built-in ones (static, local, exec), replacing one of the same name:
  // tests' fakes.
  std::vector<std::shared_ptr<Provider>> extra_providers;
  // Whose time the lag metrics and the periodic resync follow (null: the system clock).
  const Clock* clock = nullptr;
};

class Controller {
 public:
  Controller(store::Store& store, env::Services& envs, coord::Coordinator& coord,
             ControllerOptions options);
  ~Controller();  // Stop()
  // The URL local agents join (known once the server listens).
  void SetServerUrl(std::string url);
  void Start();
  // Stops the loop; with LocalOptions::stop_with_server, also the local agents.
  void Stop();
  // Look at the environments again soon (the coordinator: a lease came or went).
  void Poke();
  // Appends the controller's metrics (reconcile lag by trigger, reconciles) in Prometheus text.
  void RenderMetrics(std::string& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::fleet
