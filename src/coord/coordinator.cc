#include "coord/coordinator.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "common/log.h"
#include "runtime/work_queue.h"

namespace drover::coord {

constexpr std::string_view kServerPrefix = "server/";
constexpr std::string_view kResourcePrefix = "resource/";
constexpr std::string_view kLeader = "leader";
constexpr const char* kRoundKey = "round";  // its work queue's one key

struct Coordinator::Impl {
  Impl(store::Store& s, CoordinatorOptions o) : store(s), leases(s), opts(std::move(o)) {
    std::sort(opts.resources.begin(), opts.resources.end());
    configured = opts.resources;
    queue = std::make_unique<runtime::WorkQueue>(
        runtime::WorkQueueOptions{.name = "coordinator",
                                  .workers = 1,
                                  .backoff_base = opts.ttl / 3,
                                  .backoff_max = opts.ttl / 3,
                                  .clock = nullptr},
        [this](const std::string&) {
          Tick();
          return runtime::Outcome::After(
              std::chrono::duration_cast<std::chrono::milliseconds>(opts.ttl / 3));
        });
  }

  store::Store& store;
  store::Leases leases;
  CoordinatorOptions opts;
  std::vector<std::string> configured;  // the resources given in the options (immutable)
  // One key, one worker: a round every ttl/3, at once when poked.
  std::unique_ptr<runtime::WorkQueue> queue;
  mutable std::mutex mu;
  bool stopped = false;                      // GUARDED_BY(mu)
  std::map<std::string, store::Lease> held;  // GUARDED_BY(mu): resource and leader leases
  std::optional<store::Lease> membership;    // coordinator thread only

  std::string ResourceLease(const std::string& r) const { return std::string(kResourcePrefix) + r; }

  void Gained(const store::Lease& l) {
    {
      std::lock_guard lock(mu);
      held[l.name] = l;
    }
    LogInfo("lease {} acquired (generation {})", l.name, l.generation);
    if (opts.on_acquired) opts.on_acquired(l);
  }

  void Lost(const std::string& name, std::string_view why) {
    {
      std::lock_guard lock(mu);
      held.erase(name);
    }
    LogInfo("lease {} {}", name, why);
    if (opts.on_lost) opts.on_lost(name);
  }

  // One round: stay a member, renew what we hold, take the leader lease if free, and move our
  // share of resources toward ceil(resources / alive servers).
  void Tick() {
    auto m = membership ? leases.Renew(*membership, opts.ttl)
                        : leases.Acquire(std::string(kServerPrefix) + opts.server_id,
                                         opts.server_id, opts.ttl);
    if (!m.ok()) {
      membership.reset();
      if (!m.status().IsUnavailable()) LogWarn("membership lease: {}", m.status().message());
      return;  // database trouble: try again next round (held leases expire on their own)
    }
    membership = *m;

    std::map<std::string, store::Lease> mine;
    {
      std::lock_guard lock(mu);
      mine = held;
    }
    std::vector<store::Lease> batch;
    for (const auto& [name, lease] : mine) batch.push_back(lease);
    auto renewed = leases.RenewAll(batch, opts.ttl);
    if (renewed.ok()) {
      size_t i = 0;
      for (const auto& [name, lease] : mine) {
        const auto& r = (*renewed)[i++];
        if (r) {
          std::lock_guard lock(mu);
          held[name] = *r;
        } else {
          Lost(name, "lost (expired before renewal)");
        }
      }
    }

    if (!Holds(std::string(kLeader))) {
      auto l = leases.Acquire(std::string(kLeader), opts.server_id, opts.ttl);
      if (l.ok()) Gained(*l);
    }
    Rebalance();
  }

  bool Holds(const std::string& name) const {
    std::lock_guard lock(mu);
    return held.count(name) > 0;
  }

  void Rebalance() {
    std::vector<std::string> resources;
    {
      std::lock_guard lock(mu);
      resources = opts.resources;
    }
    auto servers = AliveServers();
    if (!servers.ok()) return;
    // Leases of resources no longer listed (a deleted environment) go back.
    std::vector<store::Lease> gone;
    {
      std::lock_guard lock(mu);
      for (const auto& [name, l] : held) {
        if (name == kLeader) continue;
        std::string r = name.substr(kResourcePrefix.size());
        if (!std::binary_search(resources.begin(), resources.end(), r)) gone.push_back(l);
      }
    }
    for (const auto& l : gone) {
      if (leases.Release(l).ok()) Lost(l.name, "released (resource removed)");
    }
    size_t alive = std::max<size_t>(1, *servers);
    size_t share = (resources.size() + alive - 1) / alive;
    std::vector<std::string> mine;
    for (const auto& r : resources) {
      if (Holds(ResourceLease(r))) mine.push_back(r);
    }
    // Over our share (a server joined): give the last ones back for the newcomer to take.
    while (mine.size() > share) {
      std::string name = ResourceLease(mine.back());
      store::Lease l;
      {
        std::lock_guard lock(mu);
        l = held[name];
      }
      if (leases.Release(l).ok()) Lost(name, "released for rebalancing");
      mine.pop_back();
    }
    // Under our share: take free, released or expired ones (Acquire refuses held ones).
    for (const auto& r : resources) {
      if (mine.size() >= share) break;
      std::string name = ResourceLease(r);
      if (Holds(name)) continue;
      auto l = leases.Acquire(name, opts.server_id, opts.ttl);
      if (l.ok()) {
        Gained(*l);
        mine.push_back(r);
      }
    }
  }

  Result<size_t> AliveServers() {
    auto v = View();
    if (!v.ok()) return v.status();
    return v->servers.size();
  }

  Result<ClusterView> View() {
    ClusterView v;
    v.server_id = opts.server_id;
    Status s = store.Read([&](store::Tx& tx) {
      auto now = tx.NowMillis();
      if (!now.ok()) return now.status();
      v.now = *now;
      return Status::Ok();
    });
    if (!s.ok()) return s;
    auto servers = leases.List(std::string(kServerPrefix));
    if (!servers.ok()) return servers.status();
    for (auto& l : *servers) {
      if (l.expires_at > v.now) v.servers.push_back(std::move(l));
    }
    auto resources = leases.List(std::string(kResourcePrefix));
    if (!resources.ok()) return resources.status();
    v.resources = std::move(*resources);
    std::lock_guard lock(mu);
    for (const auto& [name, l] : held) {
      if (name == kLeader) {
        v.leader = true;
      } else {
        v.held.push_back(l);
      }
    }
    return v;
  }

  void ReleaseAll() {
    std::map<std::string, store::Lease> mine;
    {
      std::lock_guard lock(mu);
      mine.swap(held);
    }
    for (auto& [name, l] : mine) (void)leases.Release(l);
    if (membership) (void)leases.Release(*membership);
    membership.reset();
  }
};

Coordinator::Coordinator(store::Store& store, CoordinatorOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}

Coordinator::~Coordinator() { Stop(); }

void Coordinator::Start() {
  impl_->queue->Start();
  impl_->queue->Add(kRoundKey);
}

void Coordinator::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->queue->Stop(runtime::WorkQueue::kUntilDone);
  impl_->ReleaseAll();
}

void Coordinator::SetResources(std::vector<std::string> resources) {
  // The configured ones (--coord-resources) stay; these are added to them.
  resources.insert(resources.end(), impl_->configured.begin(), impl_->configured.end());
  std::sort(resources.begin(), resources.end());
  resources.erase(std::unique(resources.begin(), resources.end()), resources.end());
  std::lock_guard lock(impl_->mu);
  if (impl_->opts.resources == resources) return;
  impl_->opts.resources = std::move(resources);
  impl_->queue->Add(kRoundKey);  // a new resource should not wait a whole round for its lease
}

std::optional<store::Lease> Coordinator::Held(const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->held.find(impl_->ResourceLease(name));
  if (it == impl_->held.end()) return std::nullopt;
  return it->second;
}

std::optional<store::Lease> Coordinator::Leader() const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->held.find(std::string(kLeader));
  if (it == impl_->held.end()) return std::nullopt;
  return it->second;
}

Result<ClusterView> Coordinator::View() { return impl_->View(); }

}  // namespace drover::coord
