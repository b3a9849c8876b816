#pragma once
// The fleet controller (docs/fleet.md): keeps each environment at its desired size. One per server,
// no per-environment process: the coordinator spreads one lease per environment over the servers,
// and this server reconciles the environments whose lease it holds. A reconcile is
// level-triggered (it re-reads everything and acts on the difference; running it twice does
// nothing new) and every write it makes is fenced by the lease. It runs when environments change
// (in-process and cross-server notifications), when an environment is due by the clock (a
// heartbeat deadline, a backoff, the idle timeout) and on a periodic full resync. docs/fleet.md.
#include <chrono>
#include <memory>
#include <string>

#include "coord/coordinator.h"
#include "env/environments.h"
#include "fleet/local_provider.h"
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
};

class Controller {
 public:
  Controller(store::Store& store, env::EnvironmentService& envs, coord::Coordinator& coord,
             ControllerOptions options);
  ~Controller();  // Stop()
  // The URL local agents join (known once the server listens).
  void SetServerUrl(std::string url);
  void Start();
  // Stops the loop; with LocalOptions::stop_with_server, also the local agents.
  void Stop();
  // One pass over every environment this server holds (tests).
  void ReconcileAll();
  // Look at the environments again soon (the coordinator: a lease came or went).
  void Poke();
  // Appends the controller's metrics (reconcile lag by trigger, reconciles) in Prometheus text.
  void RenderMetrics(std::string& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::fleet
