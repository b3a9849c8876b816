#pragma once
// The fleet controller (SPEC §6): keeps each environment at its desired size. One per server, no
// per-environment process: the coordinator spreads one lease per environment over the servers,
// and this server reconciles the environments whose lease it holds. A reconcile is
// level-triggered (it re-reads everything and acts on the difference; running it twice does
// nothing new) and every write it makes is fenced by the lease. It runs when environments change
// (in-process and cross-server notifications) and on a periodic resync. docs/fleet.md.
#include <chrono>
#include <memory>
#include <string>

#include "coord/coordinator.h"
#include "env/environments.h"
#include "fleet/local_provider.h"
#include "store/store.h"

namespace drover::fleet {

struct ControllerOptions {
  std::chrono::milliseconds resync{1000};
  LocalOptions local;  // server_url may be set later with SetServerUrl
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
  // One pass over every environment this server holds (tests and the loop).
  void ReconcileAll();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::fleet
