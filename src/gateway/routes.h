#pragma once
// Gateway routes in the store (docs/gateway.md). Route names are global, like host names:
// `/svc/{name}/` has no tenant in it, so a name one tenant holds is taken for the others (409).
// Every server keeps every route in memory, reloaded when any changes (the store's
// notifications reach every server), so a proxied request reads nothing from the store.
// Thread-safe.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/page.h"
#include "common/status.h"
#include "events/spec_rows.h"
#include "gateway/route_spec.h"
#include "gateway/upstreams.h"
#include "store/store.h"

namespace drover::gateway {

// A stored route: its spec as given (checked by ParseRouteDocument before it is stored).
using Route = events::SpecRow;

// A route as the proxy uses it: the parsed spec and the upstreams' health, which lives as long
// as the route's name does (a spec change keeps the health of upstreams that stay).
struct LiveRoute {
  Route route;
  RouteSpec spec;
  std::shared_ptr<UpstreamSet> upstreams;  // static upstreams; environment ones are elsewhere
};

class RouteService {
 public:
  explicit RouteService(store::Store& store);
  ~RouteService();

  // Stores the spec (parsed by ParseRouteDocument); Conflict when another tenant holds the name.
  void Put(std::string tenant, std::string name, std::string spec_json,
           std::function<void(Result<std::pair<Route, Written>>)> done);
  Result<Route> Get(const std::string& tenant, const std::string& name);
  Result<Page<Route>> List(const std::string& tenant, const std::string& cursor, int limit);
  void Delete(std::string tenant, std::string name, std::function<void(Status)> done);

  // Whether Find needs the store first (a route changed since the last load).
  bool Stale() const {
    return loaded_.load(std::memory_order_acquire) != changes_.load(std::memory_order_acquire);
  }
  // Reloads every route when stale (a store read): Unavailable when the store fails.
  Status Refresh();
  // The route named `name` as last loaded; null when there is none.
  std::shared_ptr<const LiveRoute> Find(const std::string& name) const;
  // Every live route (for metrics).
  std::vector<std::shared_ptr<const LiveRoute>> All() const;

 private:
  store::Store& store_;
  int subscription_ = -1;
  // Stale until a read that began after the last change is installed: a request that comes
  // while another refreshes waits for that refresh instead of seeing the old table.
  std::atomic<uint64_t> changes_{1};
  std::atomic<uint64_t> loaded_{0};
  void MarkStale() { changes_.fetch_add(1, std::memory_order_acq_rel); }
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const LiveRoute>> live_;  // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<UpstreamSet>> health_;    // GUARDED_BY(mu_)
  std::mutex refresh_mu_;                                         // one reload at a time
};

}  // namespace drover::gateway
