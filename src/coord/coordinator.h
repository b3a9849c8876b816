#pragma once
// How the servers sharing a database divide the work. Each server holds:
//   - a membership lease "server/<id>" (alive servers are the unexpired ones),
//   - maybe the "leader" lease (one server: the scheduler and cleanup run there),
//   - a fair share of the named resources (ceil(resources / alive servers) leases, e.g. one per
//     environment for the fleet controller), taking free or expired ones and releasing extras
//     when servers join.
// Every lease is renewed each ttl/3; a server killed with -9 stops renewing and the others take
// its leases over once they expire. On Stop the server releases everything at once.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/lease.h"
#include "store/store.h"

namespace drover::coord {

struct CoordinatorOptions {
  std::string server_id;                 // unique per server process
  std::chrono::milliseconds ttl{10000};  // lease time to live
  std::vector<std::string> resources;    // the named resources to spread (more via SetResources)
  // Called on the coordinator's thread when this server gains or loses a resource (or the
  // leader lease, named "leader").
  std::function<void(const store::Lease&)> on_acquired;
  std::function<void(const std::string& name)> on_lost;
};

struct ClusterView {
  std::string server_id;
  bool leader = false;
  std::vector<store::Lease> servers;    // unexpired membership leases
  std::vector<store::Lease> held;       // this server's resource leases
  std::vector<store::Lease> resources;  // every resource lease (any holder, maybe expired)
  int64_t now = 0;                      // database clock when read
};

class Coordinator {
 public:
  Coordinator(store::Store& store, CoordinatorOptions options);
  ~Coordinator();  // Stop()
  void Start();
  // Releases every lease this server holds and stops. Idempotent.
  void Stop();
  // The resources to spread besides the configured ones (e.g. one per environment).
  void SetResources(std::vector<std::string> resources);
  // The lease this server holds on `name`, if any (for fencing work done under it).
  std::optional<store::Lease> Held(const std::string& name) const;
  // The leader lease, when this server holds it (the scheduler fences its firings with it).
  std::optional<store::Lease> Leader() const;
  // A fresh read of the cluster's state from the database.
  Result<ClusterView> View();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::coord
