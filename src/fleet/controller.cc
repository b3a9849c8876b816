#include "fleet/controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/duration.h"
#include "common/log.h"
#include "control/values.h"
#include "fleet/exec_provider.h"

namespace drover::fleet {
namespace {

// The lease name of an environment among the coordinator's resources.
std::string ResourceName(const env::Environment& e) { return "env/" + e.tenant + "/" + e.name; }

constexpr int64_t kHealthyResetMs = 10 * 60 * 1000;

bool Live(const env::Instance& i) {
  return i.state == "starting" || i.state == "running" || i.state == "unhealthy";
}

}  // namespace

struct Controller::Impl {
  Impl(store::Store& s, env::EnvironmentService& e, coord::Coordinator& c, ControllerOptions o)
      : store(s),
        envs(e),
        coord(c),
        opts(std::move(o)),
        local(opts.local),
        exec(opts.local.data_dir) {}

  store::Store& store;
  env::EnvironmentService& envs;
  coord::Coordinator& coord;
  ControllerOptions opts;
  LocalProvider local;
  ExecProvider exec;
  StaticProvider static_provider;
  // Group mode: the size last set through set_capacity, by resource name (set again after a
  // restart or takeover: the command must be idempotent).
  std::map<std::string, int64_t> applied;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;   // GUARDED_BY(mu)
  bool dirty = false;  // GUARDED_BY(mu): an environment changed
  int sub = -1;
  // When an environment may start instances again after a failed start or a replacement
  // (exponential backoff), by resource name. Controller thread only.
  std::map<std::string, std::pair<int64_t, int>> backoff;  // until (db ms), attempts
  // When each unhealthy instance was first seen unhealthy here (its backoff runs from then).
  std::map<std::string, int64_t> unhealthy_since;

  Provider* For(const env::Environment& e) {
    if (e.spec.provider == "local") return &local;
    if (e.spec.provider == "exec" && e.spec.exec && !e.spec.exec->create.empty()) return &exec;
    return &static_provider;  // static, and exec in group mode: agents join by themselves
  }

  // The capacity for this environment's group (cloud/region of an exec group; else the
  // provider's name as the cloud).
  static std::optional<int64_t> Desired(const env::Environment& e) {
    auto cap = control::ParseCapacity(e.capacity());
    if (!cap.ok()) return std::nullopt;
    if (e.spec.exec) return control::ResolveCapacity(*cap, e.spec.exec->cloud, e.spec.exec->region);
    return control::ResolveCapacity(*cap, e.spec.provider, "");
  }

  // Group mode: asks set_capacity for the desired size when it changed (with backoff on failure).
  Status ApplyGroupSize(const env::Environment& e, const store::Lease& lease, int64_t now) {
    auto desired = Desired(e);
    if (!desired) return Status::Ok();
    std::string key = ResourceName(e);
    auto it = applied.find(key);
    if (it != applied.end() && it->second == *desired) return Status::Ok();  // a no-op change
    auto& [until, attempts] = backoff[key];
    if (now < until) return Status::Ok();
    Status s = exec.SetCapacity(e, *desired);
    if (!s.ok()) {
      attempts++;
      until = now + std::min<int64_t>(1000LL << std::min(attempts, 8), 300000);
      return envs.RecordEvent(e, "set-capacity-failed", s.message(), &lease);
    }
    attempts = 0;
    applied[key] = *desired;
    return envs.RecordEvent(e, "set-capacity", fmt::format("group size set to {}", *desired),
                            &lease);
  }

  void Loop() {
    std::unique_lock lock(mu);
    while (!stop) {
      dirty = false;
      lock.unlock();
      ReconcileAll();
      lock.lock();
      cv.wait_for(lock, opts.resync, [&] { return stop || dirty; });
    }
  }

  void ReconcileAll() {
    auto all = envs.AllEnvironments();
    if (!all.ok()) return;  // the store is away: next round
    std::vector<std::string> names;
    for (const auto& e : *all) names.push_back(ResourceName(e));
    coord.SetResources(names);
    for (const auto& e : *all) {
      auto lease = coord.Held(ResourceName(e));
      if (!lease) continue;
      Status s = Reconcile(e, *lease);
      if (!s.ok() && s.code() != Status::Code::kConflict) {
        LogWarn("reconcile of {}/{}: {}", e.tenant, e.name, s.message());
      }
    }
    // Local agents of instances that no longer exist (their environment was deleted) go.
    std::set<std::string> keep;
    for (const auto& e : *all) {
      auto insts = envs.Instances(e.tenant, e.name);
      if (!insts.ok()) return;  // cannot tell: sweep nothing
      for (const auto& i : *insts) {
        if (Live(i)) keep.insert(i.id);
      }
    }
    local.Sweep(keep);
  }

  Status Reconcile(const env::Environment& e, const store::Lease& lease) {
    Provider* provider = For(e);
    auto now = envs.Now();
    if (!now.ok()) return now.status();
    auto insts = envs.Instances(e.tenant, e.name);
    if (!insts.ok()) return insts.status();
    const auto& health = e.spec.health;
    int64_t grace = health.heartbeat_interval.count() * health.unhealthy_after;
    std::vector<int64_t> replacements;  // restart counts of the replacements to start

    // 1. Health: gone or silent instances are unhealthy; unhealthy ones are replaced per policy.
    for (auto inst : *insts) {
      if (!Live(inst)) continue;
      if (inst.state != "unhealthy") {
        unhealthy_since.erase(inst.id);  // recovered (a heartbeat came back): a fresh backoff
        std::string why;
        auto alive = provider->Alive(e, inst);
        int64_t last = inst.last_heartbeat_ms.value_or(inst.created_at_ms);
        // A starting agent gets the start-up time of a first heartbeat on top (fetching a
        // repository may come first).
        int64_t allowed = inst.last_heartbeat_ms ? grace : grace + 30000;
        if (alive && !*alive) {
          why = "its agent process is gone";
        } else if (*now - last > allowed) {
          why = fmt::format("no heartbeat for {}",
                            FormatDuration(std::chrono::milliseconds((*now - last) / 1000 * 1000)));
        }
        if (why.empty()) continue;
        auto moved = envs.Transition(inst, "unhealthy", "unhealthy", why, &lease);
        if (!moved.ok()) return moved.status();
        if (!*moved) continue;
        inst.state = "unhealthy";
        inst.state_reason = why;
      }
      // Unhealthy: the restart policy decides. An instance that ran 10 minutes before it failed
      // starts a fresh count (a crash loop is what the count and the backoff are for).
      int64_t since = unhealthy_since.emplace(inst.id, *now).first->second;
      bool long_lived = since - inst.created_at_ms > kHealthyResetMs;
      int64_t restarts = long_lived ? 0 : inst.restarts;
      bool restart = health.restart == "always" || health.restart == "on-failure";
      if (!restart) {
        auto r = envs.Transition(inst, "failed", "failed",
                                 "unhealthy and the restart policy is never", &lease);
        if (!r.ok()) return r.status();
        if (*r) (void)provider->Delete(e, inst);  // a hung agent does not linger
        continue;
      }
      if (restarts >= health.max_restarts) {
        auto r = envs.Transition(inst, "failed", "failed",
                                 fmt::format("unhealthy after {} restarts (max_restarts {})",
                                             restarts, health.max_restarts),
                                 &lease);
        if (!r.ok()) return r.status();
        if (*r) (void)provider->Delete(e, inst);
        continue;
      }
      // Exponential backoff per instance: the first replacement at once, then 1 s, 2 s, 4 s ...
      // up to 5 min after it became unhealthy. Meanwhile it keeps its place.
      int64_t delay = restarts == 0
                          ? 0
                          : std::min<int64_t>(1000LL << std::min<int64_t>(restarts - 1, 9), 300000);
      if (*now < since + delay) continue;
      if (provider->StartsInstances()) {
        // Replaced: the old one stops, a new one starts below with one more restart.
        auto t = envs.Transition(inst, "terminating", "replacing", "replaced: " + inst.state_reason,
                                 &lease);
        if (!t.ok()) return t.status();
        if (!*t) continue;
        (void)provider->Delete(e, inst);
        env::Instance gone = inst;
        gone.state = "terminating";
        auto done = envs.Transition(gone, "terminated", "terminated", "replaced", &lease);
        if (!done.ok()) return done.status();
        replacements.push_back(restarts + 1);
        unhealthy_since.erase(inst.id);
      }
    }
    if (!provider->StartsInstances()) {
      // static: desired is shown against joined agents; exec group: the group sizes itself.
      if (e.spec.exec && !e.spec.exec->set_capacity.empty()) return ApplyGroupSize(e, lease, *now);
      return Status::Ok();
    }

    // 2. Size: start the missing, terminate extras newest first.
    std::optional<int64_t> desired = Desired(e);
    if (!desired) return Status::Ok();  // the capacity map leaves this group alone
    insts = envs.Instances(e.tenant, e.name);
    if (!insts.ok()) return insts.status();

    // Idle: no spec or scale change and no run reported for idle_timeout → scale to 0.
    if (e.spec.idle_timeout.count() > 0 && *desired > 0) {
      int64_t activity = e.updated_at_ms;
      for (const auto& i : *insts) {
        if (i.last_run) activity = std::max(activity, i.last_run->finished_at_ms);
      }
      if (*now - activity > e.spec.idle_timeout.count()) {
        std::string why =
            fmt::format("idle: no activity for {} (idle_timeout {}); scaled to 0",
                        FormatDuration(std::chrono::milliseconds((*now - activity) / 1000 * 1000)),
                        FormatDuration(e.spec.idle_timeout));
        Status s = envs.SetCapacity(e, "0", "idle", why, &lease);
        if (!s.ok()) return s;
        desired = 0;
      }
    }
    // A failed instance keeps its place (its restarts are used up, or the policy is never):
    // nothing replaces it until the capacity or the spec changes. Extras go failed first, then
    // newest first.
    std::vector<env::Instance> up;
    for (const auto& i : *insts) {
      if (Live(i) || i.state == "failed") up.push_back(i);  // unhealthy ones wait for backoff
    }
    int64_t have = static_cast<int64_t>(up.size());
    std::string key = ResourceName(e);
    auto& [until, attempts] = backoff[key];
    for (int64_t n = have; n < *desired; ++n) {
      if (*now < until) break;  // backing off after failures or a replacement
      int64_t restarts = 0;
      std::string reason = fmt::format("{} of {} instances", n, *desired);
      if (!replacements.empty()) {
        restarts = replacements.back();
        replacements.pop_back();
        reason = fmt::format("replacement (restart {})", restarts);
      }
      auto id = envs.AddInstance(e, restarts, reason, &lease);
      if (!id.ok()) return id.status();
      env::Instance inst;
      inst.id = *id;
      inst.tenant = e.tenant;
      inst.environment = e.name;
      inst.state = "starting";
      auto started = provider->Create(e, *id);
      if (!started.ok()) {
        attempts++;
        until = *now + std::min<int64_t>(1000LL << std::min(attempts, 8), 300000);
        auto f = envs.Transition(inst, "failed", "start-failed",
                                 "the provider could not start it: " + started.status().message(),
                                 &lease);
        if (!f.ok()) return f.status();
        break;
      }
      DROVER_RETURN_IF_ERROR(
          envs.SetProviderInfo(*id, started->provider_id, started->address, started->data));
      attempts = 0;
    }
    if (have > *desired) {
      std::sort(up.begin(), up.end(), [](const auto& a, const auto& b) {
        bool fa = a.state == "failed" || a.state == "unhealthy";
        bool fb = b.state == "failed" || b.state == "unhealthy";
        if (fa != fb) return fa;
        return a.created_at_ms > b.created_at_ms;  // newest first
      });
      for (int64_t n = have; n > *desired; --n) {
        const auto& inst = up[static_cast<size_t>(have - n)];
        auto t = envs.Transition(inst, "terminating", "terminating",
                                 fmt::format("scaling down to {}", *desired), &lease);
        if (!t.ok()) return t.status();
        if (!*t) continue;
        (void)provider->Delete(e, inst);
        env::Instance gone = inst;
        gone.state = "terminating";
        auto done = envs.Transition(gone, "terminated", "terminated",
                                    fmt::format("scaled down to {}", *desired), &lease);
        if (!done.ok()) return done.status();
      }
    }
    return Status::Ok();
  }
};

Controller::Controller(store::Store& store, env::EnvironmentService& envs,
                       coord::Coordinator& coord, ControllerOptions options)
    : impl_(std::make_unique<Impl>(store, envs, coord, std::move(options))) {}

Controller::~Controller() { Stop(); }

void Controller::SetServerUrl(std::string url) {
  impl_->exec.SetServerUrl(url);
  impl_->local.SetServerUrl(std::move(url));
}

void Controller::Start() {
  impl_->sub = impl_->store.Subscribe([im = impl_.get()](const store::Change& c) {
    bool ours =
        c.resync || std::find(c.topics.begin(), c.topics.end(), env::kTopic) != c.topics.end();
    if (!ours) return;
    std::lock_guard lock(im->mu);
    im->dirty = true;
    im->cv.notify_one();
  });
  impl_->thread = std::thread([im = impl_.get()] { im->Loop(); });
}

void Controller::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stop) return;
    impl_->stop = true;
    impl_->cv.notify_one();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->sub >= 0) impl_->store.Unsubscribe(impl_->sub);
  if (impl_->opts.local.stop_with_server) impl_->local.StopAll();
}

void Controller::ReconcileAll() { impl_->ReconcileAll(); }

}  // namespace drover::fleet
