#include "fleet/controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "common/log.h"
#include "control/variables.h"
#include "fleet/exec_provider.h"
#include "metrics/registry.h"
#include "runtime/work_queue.h"
#include "store/origin.h"

namespace drover::fleet {
namespace {

using env::InstanceState;

// Work queue keys besides the environments' ("env/<tenant>/<name>", their lease names too).
constexpr std::string_view kListKey = "list";           // compare versions, follow the leases
constexpr std::string_view kHoldsKey = "holds";         // windows or the watcher changed
constexpr std::string_view kProviderKey = "provider/";  // + name: something it watches changed

std::string ResourceName(const env::Environment& e) { return "env/" + e.tenant + "/" + e.name; }

constexpr std::chrono::milliseconds kRetry{1000};

// The plan could not be applied as made: the world moved under it (a heartbeat came in, the
// environment changed). Planned again at once from a fresh read.
Status Moved() { return Status::Conflict("changed meanwhile; planning again"); }

}  // namespace

struct Controller::Impl {
  Impl(store::Store& s, env::Services& e, coord::Coordinator& c, ControllerOptions o)
      : store(s), env(e), coord(c), opts(std::move(o)) {
    clock = opts.clock ? opts.clock : &SystemClock::Get();
    providers.Add(std::make_shared<StaticProvider>());
    providers.Add(std::make_shared<LocalProvider>(opts.local));
    providers.Add(std::make_shared<ExecProvider>(opts.local.data_dir));
    for (auto& p : opts.extra_providers) providers.Add(p);
    queue = std::make_unique<runtime::WorkQueue>(
        runtime::WorkQueueOptions{.name = "fleet",
                                  .workers = 1,
                                  .backoff_base = kRetry,
                                  .backoff_max = std::chrono::minutes(1),
                                  .clock = clock},
        [this](const std::string& key) { return Handle(key); });
    // A local agent that exits wakes the controller at once (time to repair is milliseconds,
    // not a poll period).
    providers.ForEach([this](Provider& p) {
      p.SetOnChange(
          [this, key = std::string(kProviderKey) + std::string(p.Name())] { queue->Add(key); });
    });
  }

  store::Store& store;
  env::Services& env;
  coord::Coordinator& coord;
  ControllerOptions opts;
  const Clock* clock;
  // Declared before the providers, destroyed after them: a provider's watcher thread may add
  // to it until the provider is gone.
  std::unique_ptr<runtime::WorkQueue> queue;
  ProviderRegistry providers;
  int sub = -1;
  std::atomic<bool> stopped{false};

  // When the oldest change not yet listed arrived (for the lag metric).
  std::mutex mu;
  std::optional<Clock::SteadyTime> changed_at;  // GUARDED_BY(mu)

  // The rest is the queue's single worker's.
  // Group mode: the size last set through set_capacity, by resource name (set again after a
  // restart or takeover: the command must be idempotent).
  std::map<std::string, int64_t> applied;
  // When an environment may start instances again after a failed start (exponential backoff),
  // by resource name.
  std::map<std::string, std::pair<int64_t, int>> backoff;  // until (db ms), attempts
  // A `list` command's answer and when it was asked (db ms), by resource name.
  struct Listed {
    int64_t at = 0;
    std::optional<std::set<std::string>> ids;  // nullopt: the last call failed
  };
  std::map<std::string, Listed> listed;
  // Environments told in an event why nothing is done for them (a provider this server does not
  // run, a spec that no longer parses), by resource name and reason: said once per lease.
  std::set<std::string> noted;
  uint64_t holds_version = 0;
  Clock::SteadyTime next_full{};

  // An environment this server holds, as last read.
  struct Tracked {
    env::Environment env;
    // Instances its provider started that are live, so that they are deleted through the
    // provider when the environment is deleted (its rows go with it).
    std::map<std::string, env::Instance> provider_instances;
    std::optional<Clock::SteadyTime> changed_at;  // a change not yet reconciled (lag metric)
    int conflicts = 0;                            // plans in a row that found the world moved
  };
  std::map<std::string, Tracked> tracked;  // by resource name

  metrics::Histogram change_lag{LagBuckets()}, deadline_lag{LagBuckets()};
  std::atomic<uint64_t> reconciles{0};
  std::atomic<int64_t> held{0};
  static std::vector<double> LagBuckets() {
    return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  }

  Provider& For(const env::Environment& e) {
    Provider* p = providers.Find(e.spec.provider);
    return p ? *p : *providers.Find("static");
  }

  runtime::Outcome Handle(const std::string& key) {
    store::ScopedOrigin origin({"controller", "system", ""});  // the actor of its change records
    if (key == kListKey) return List();
    if (key == kHoldsKey) {
      // A window or the watcher's variables changed: every environment may hold anew.
      if (uint64_t v = env.environments.HoldsVersion(); v != holds_version) {
        holds_version = v;
        for (const auto& [name, t] : tracked) queue->Add(name);
      }
      return runtime::Outcome::Done();
    }
    if (key.starts_with(kProviderKey)) {
      auto name = std::string_view(key).substr(kProviderKey.size());
      for (const auto& [n, t] : tracked) {
        if (t.env.spec.provider == name) queue->Add(n);
      }
      return runtime::Outcome::Done();
    }
    return ReconcileKey(key);
  }

  // Compares every environment's version with what was read last (reading only the changed
  // ones), follows the leases, and queues the environments that changed or were just acquired
  // (all of them on the periodic full resync).
  runtime::Outcome List() {
    std::optional<Clock::SteadyTime> since;
    {
      std::lock_guard lock(mu);
      since = std::exchange(changed_at, std::nullopt);
    }
    auto versions = env.environments.Versions();
    if (!versions.ok()) return runtime::Outcome::After(kRetry);  // the store is away: soon again
    auto steady = clock->Steady();
    bool full = steady >= next_full;
    if (full) next_full = steady + opts.full_resync;
    std::vector<std::string> names;
    names.reserve(versions->size());
    for (const auto& v : *versions) names.push_back("env/" + v.tenant + "/" + v.name);
    coord.SetResources(names);
    std::map<std::string, Tracked> next;
    for (size_t i = 0; i < versions->size(); ++i) {
      const auto& v = (*versions)[i];
      if (!coord.Held(names[i])) continue;
      auto old = tracked.find(names[i]);
      if (old != tracked.end() && old->second.env.modify_index == v.modify_index) {
        if (full) queue->Add(names[i]);
        next.emplace(names[i], std::move(old->second));
        continue;
      }
      auto e = env.environments.Get(v.tenant, v.name);
      if (!e.ok()) continue;
      Tracked t{std::move(*e), {}, since};
      if (old != tracked.end()) t.provider_instances = std::move(old->second.provider_instances);
      next.emplace(names[i], std::move(t));
      queue->Add(names[i]);
    }
    // Deleted environments (gone from the store, not just from this server): the machines a
    // provider made for them are deleted through it.
    std::set<std::string> exists(names.begin(), names.end());
    for (auto& [name, t] : tracked) {
      if (!next.count(name)) queue->Forget(name);
      if (exists.count(name)) continue;
      for (const auto& [id, inst] : t.provider_instances) {
        Status s = For(t.env).Delete(t.env, inst);
        LogInfo("environment {}/{} was deleted: instance {} ({}) {}", t.env.tenant, t.env.name,
                inst.id, inst.provider_id,
                s.ok() ? "deleted by the provider" : "could not be deleted: " + s.message());
      }
    }
    tracked = std::move(next);
    held.store(static_cast<int64_t>(tracked.size()));
    // Forget what belongs to environments this server no longer reconciles: a takeover or a
    // new lease starts afresh (and applies the group size once again).
    std::erase_if(applied, [&](const auto& kv) { return !tracked.count(kv.first); });
    std::erase_if(backoff, [&](const auto& kv) { return !tracked.count(kv.first); });
    std::erase_if(listed, [&](const auto& kv) { return !tracked.count(kv.first); });
    std::erase_if(noted,
                  [&](const auto& key) { return !tracked.count(key.substr(0, key.find('\x1f'))); });
    // What runs on this host for instances that are no longer live is stopped.
    providers.ForEach([&](Provider& p) {
      p.Sweep([&](const std::string& id) -> std::optional<bool> {
        auto state = env.instances.StateOf(id);
        if (!state.ok()) return std::nullopt;
        return *state && env::IsLive(**state);
      });
    });
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_full - clock->Steady());
    return runtime::Outcome::After(
        std::clamp(left, std::chrono::milliseconds(1), opts.full_resync));
  }

  runtime::Outcome ReconcileKey(const std::string& key) {
    auto it = tracked.find(key);
    if (it == tracked.end()) return runtime::Outcome::Done();
    Tracked& t = it->second;
    auto lease = coord.Held(key);
    if (!lease) return runtime::Outcome::Done();  // lost meanwhile: the next list drops it
    auto now = env.environments.Now();
    if (!now.ok()) return runtime::Outcome::After(kRetry);
    auto started = clock->Steady();
    int64_t due = kNever;
    Status s = Reconcile(t, *lease, *now, &due);
    reconciles.fetch_add(1, std::memory_order_relaxed);
    if (t.changed_at) {
      change_lag.Observe(std::chrono::duration<double>(clock->Steady() - *t.changed_at).count());
      t.changed_at.reset();
    }
    if (s.code() == Status::Code::kConflict) {
      // Changed under us: read it again and plan once more, at once the first time. A world
      // that keeps moving (or a row no plan can move, say a damaged state) backs off, 100 ms
      // doubling to 5 s, instead of spinning.
      if (auto e = env.environments.Get(t.env.tenant, t.env.name); e.ok()) t.env = std::move(*e);
      int n = ++t.conflicts;
      auto again = std::chrono::milliseconds(
          n == 1 ? 1 : std::min<int64_t>(100LL << std::min(n - 2, 6), 5000));
      return runtime::Outcome::After(again);
    }
    t.conflicts = 0;
    if (!s.ok()) {
      LogWarn("reconcile of {}/{}: {}", t.env.tenant, t.env.name, s.message());
      due = std::min(due, *now + kRetry.count());
    }
    if (due == kNever) return runtime::Outcome::Done();
    // The database's now, moved on by the time the reconcile took (no second read for it).
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock->Steady() - started);
    int64_t left = due - (*now + took.count());
    return runtime::Outcome::After(
        std::chrono::milliseconds(std::clamp<int64_t>(left, 1, opts.full_resync.count())));
  }

  // An event saying once per lease why nothing is done for the environment.
  Status Note(const env::Environment& e, const store::Lease& lease, const std::string& what,
              const std::string& kind, const std::string& reason) {
    if (!noted.insert(ResourceName(e) + "\x1f" + what).second) return Status::Ok();
    return env.events.RecordEvent(e, kind, reason, &lease);
  }

  // A `list` command's provider ids, asked at most every `every` per environment; nullopt
  // without one or when the call failed (an event says why; nothing is judged gone then).
  std::optional<std::set<std::string>> ListedIds(Provider& p, const env::Environment& e,
                                                 const store::Lease& lease, int64_t now,
                                                 int64_t every, int64_t* due) {
    auto& l = listed[ResourceName(e)];
    if (l.at == 0 || now - l.at >= every) {
      auto ids = p.List(e);
      if (!ids) {
        listed.erase(ResourceName(e));
        return std::nullopt;
      }
      l.at = now;
      if (ids->ok()) {
        l.ids = std::move(**ids);
      } else {
        l.ids.reset();
        (void)env.events.RecordEvent(e, "list-failed", ids->status().message(), &lease);
      }
    }
    *due = std::min(*due, l.at + every);
    return l.ids;
  }

  // Reconciles one environment at `now` (database clock): observes, plans, applies; lowers
  // `*due` to when it needs a look again by the clock alone.
  Status Reconcile(Tracked& t, const store::Lease& lease, int64_t now, int64_t* due) {
    const env::Environment& e = t.env;
    if (e.spec_error.empty()) noted.erase(ResourceName(e) + "\x1fspec");
    if (opts.providers.Enabled(e.spec.provider)) noted.erase(ResourceName(e) + "\x1fprovider");
    if (!e.spec_error.empty()) {
      // A spec that no longer parses would read as the defaults (capacity 0): act on nothing
      // until it is fixed; the status shows why.
      return Note(e, lease, "spec", "spec-invalid",
                  e.spec_error + "; nothing is done until the spec is written again");
    }
    if (!opts.providers.Enabled(e.spec.provider)) {
      // E.g. a local environment from before --providers, on a server without local: nothing
      // runs on this host for it; said once per lease.
      return Note(e, lease, "provider", "provider-disabled",
                  fmt::format("provider {} is not enabled on this server (drover server "
                              "--providers); nothing is started",
                              e.spec.provider));
    }
    Provider& provider = For(e);
    Observations obs;
    obs.mode = provider.ModeFor(e);
    // Instances the provider starts are remembered, to be deleted through it with their
    // environment: the read then takes terminated ones too, to tell a terminated instance
    // (dropped) from one whose row went with its environment just now (kept).
    bool remember = obs.mode == Mode::kInstances;
    auto rows = env.instances.Instances(e.tenant, e.name, /*terminated=*/remember);
    if (!rows.ok()) return rows.status();
    std::vector<env::Instance> insts;
    std::map<std::string, env::Instance> started;
    for (auto& i : *rows) {
      if (remember) t.provider_instances.erase(i.id);
      if (env::IsLive(i.state) && !i.provider_id.empty()) started.emplace(i.id, i);
      if (i.state != InstanceState::kTerminated) insts.push_back(std::move(i));
    }
    if (remember) t.provider_instances.merge(started);
    if (obs.mode != Mode::kJoin) {
      auto d = env.environments.CapacityOf(e, now);
      obs.desired = d.desired;
      obs.desired_changes_at = d.next_change_ms;
    }
    for (const auto& i : insts) {
      if (!env::IsLive(i.state) || i.state == InstanceState::kUnhealthy) continue;
      if (auto alive = provider.Alive(e, i)) obs.alive[i.id] = *alive;
    }
    const auto& health = e.spec.health;
    int64_t list_every =
        std::max<int64_t>(health.heartbeat_interval.count() * health.unhealthy_after, 1000);
    obs.listed = ListedIds(provider, e, lease, now, list_every, due);
    std::string key = ResourceName(e);
    if (auto b = backoff.find(key); b != backoff.end()) obs.backoff_until = b->second.first;
    if (auto a = applied.find(key); a != applied.end()) obs.applied_group_size = a->second;

    Plan plan = PlanReconcile(e, insts, obs, now,
                              {opts.resync.count(), env::HeartbeatBuffer::kDefaultPeriod.count()});
    for (double lag : plan.deadline_lags) deadline_lag.Observe(lag);
    *due = std::min(*due, plan.due);

    return Apply(t, plan, provider, lease, now, due);
  }

  // Moves `inst` to `to`; Moved() when it was no longer in the state the plan saw.
  Status Move(const env::Instance& inst, InstanceState to, const std::string& kind,
              const std::string& reason, const store::Lease& lease) {
    auto moved = env.instances.Transition(inst, to, kind, reason, &lease);
    if (!moved.ok()) return moved.status();
    return *moved ? Status::Ok() : Moved();
  }

  // Terminating, deleted through the provider, terminated.
  Status Stop(Tracked& t, Provider& provider, const env::Instance& inst, const std::string& kind,
              const std::string& reason, const std::string& done, const store::Lease& lease) {
    DROVER_RETURN_IF_ERROR(Move(inst, InstanceState::kTerminating, kind, reason, lease));
    (void)provider.Delete(t.env, inst);
    env::Instance gone = inst;
    gone.state = InstanceState::kTerminating;
    t.provider_instances.erase(inst.id);
    auto r = env.instances.Transition(gone, InstanceState::kTerminated, "terminated", done, &lease);
    return r.status();
  }

  // Applies the plan's actions in order; stops at the first that finds the world moved.
  Status Apply(Tracked& t, const Plan& plan, Provider& provider, const store::Lease& lease,
               int64_t now, int64_t* due) {
    const env::Environment& e = t.env;
    std::string key = ResourceName(e);
    bool starts_failed = false;
    for (const Action& a : plan.actions) {
      switch (a.kind) {
        case ActionKind::kMarkUnhealthy:
          DROVER_RETURN_IF_ERROR(
              Move(a.instance, InstanceState::kUnhealthy, "unhealthy", a.reason, lease));
          break;
        case ActionKind::kFail:
          DROVER_RETURN_IF_ERROR(
              Move(a.instance, InstanceState::kFailed, "failed", a.reason, lease));
          (void)provider.Delete(e, a.instance);  // a hung agent does not linger
          t.provider_instances.erase(a.instance.id);
          break;
        case ActionKind::kReplace:
          DROVER_RETURN_IF_ERROR(
              Stop(t, provider, a.instance, "replacing", a.reason, "replaced", lease));
          break;
        case ActionKind::kTerminate:
          DROVER_RETURN_IF_ERROR(Stop(t, provider, a.instance, "terminating",
                                      fmt::format("scaling down to {}", a.number), a.reason,
                                      lease));
          break;
        case ActionKind::kIdle:
          DROVER_RETURN_IF_ERROR(env.environments.SetCapacity(e, "0", "idle", a.reason, &lease));
          break;
        case ActionKind::kStart: {
          if (starts_failed) break;
          DROVER_RETURN_IF_ERROR(Start(t, provider, a, lease, now, due, &starts_failed));
          break;
        }
        case ActionKind::kSetGroupSize: {
          auto& [until, attempts] = backoff[key];
          Status s = provider.SetCapacity(e, a.number);
          if (!s.ok()) {
            until = now + BackoffAfter(++attempts);
            *due = std::min(*due, until);
            return env.events.RecordEvent(e, "set-capacity-failed", s.message(), &lease);
          }
          attempts = 0;
          applied[key] = a.number;
          DROVER_RETURN_IF_ERROR(env.events.RecordEvent(e, "set-capacity", a.reason, &lease));
          break;
        }
      }
    }
    return Status::Ok();
  }

  Status Start(Tracked& t, Provider& provider, const Action& a, const store::Lease& lease,
               int64_t now, int64_t* due, bool* failed) {
    const env::Environment& e = t.env;
    auto id = env.instances.AddInstance(e, a.number, a.reason, &lease);
    if (!id.ok()) return id.status();
    env::Instance inst;
    inst.id = *id;
    inst.tenant = e.tenant;
    inst.environment = e.name;
    inst.state = InstanceState::kStarting;
    auto& [until, attempts] = backoff[ResourceName(e)];
    auto started = provider.Create(e, *id);
    if (!started.ok()) {
      *failed = true;
      until = now + BackoffAfter(++attempts);
      *due = std::min(*due, until);
      // It never ran: it holds no place (as an auto-scaling group retries a failed launch);
      // the next start waits for the backoff.
      auto f = env.instances.Transition(
          inst, InstanceState::kTerminated, "start-failed",
          "the provider could not start it: " + started.status().message(), &lease);
      return f.status();
    }
    DROVER_RETURN_IF_ERROR(
        env.instances.SetProviderInfo(*id, started->provider_id, started->address, started->data));
    attempts = 0;
    inst.provider_id = started->provider_id;
    inst.address = started->address;
    inst.provider_data = started->data;
    if (!inst.provider_id.empty()) t.provider_instances[inst.id] = inst;
    return Status::Ok();
  }
};

Controller::Controller(store::Store& store, env::Services& envs, coord::Coordinator& coord,
                       ControllerOptions options)
    : impl_(std::make_unique<Impl>(store, envs, coord, std::move(options))) {}

Controller::~Controller() { Stop(); }

void Controller::SetServerUrl(std::string url) {
  impl_->providers.ForEach([&](Provider& p) { p.SetServerUrl(url); });
}

void Controller::Start() {
  impl_->sub = impl_->store.Subscribe([im = impl_.get()](const store::Change& c) {
    auto has = [&](std::string_view t) {
      return std::find(c.topics.begin(), c.topics.end(), t) != c.topics.end();
    };
    // What the capacity holds (windows) are built from: schedules and watcher variables.
    if (c.resync || has("schedules") || has(control::kWatcherTopic)) {
      im->queue->Add(std::string(kHoldsKey));
    }
    if (!c.resync && !has(env::kTopic)) return;
    {
      std::lock_guard lock(im->mu);
      if (!im->changed_at) im->changed_at = im->clock->Steady();
    }
    im->queue->Add(std::string(kListKey));
  });
  impl_->queue->Start();
  impl_->queue->Add(std::string(kListKey));
}

void Controller::Stop() {
  if (impl_->stopped.exchange(true)) return;
  if (impl_->sub >= 0) impl_->store.Unsubscribe(impl_->sub);
  impl_->queue->Stop(runtime::WorkQueue::kUntilDone);
  if (impl_->opts.local.stop_with_server) {
    impl_->providers.ForEach([](Provider& p) { p.StopAll(); });
  }
}

void Controller::Poke() { impl_->queue->Add(std::string(kListKey)); }

void Controller::RenderMetrics(std::string& out) const {
  out +=
      "# HELP drover_fleet_reconcile_lag_seconds From a change (or a deadline) to the reconcile "
      "that handled it.\n"
      "# TYPE drover_fleet_reconcile_lag_seconds histogram\n";
  impl_->change_lag.Render(out, "drover_fleet_reconcile_lag_seconds", "trigger=\"change\"");
  impl_->deadline_lag.Render(out, "drover_fleet_reconcile_lag_seconds", "trigger=\"deadline\"");
  out += fmt::format(
      "# HELP drover_fleet_reconciles_total Environment reconciles run by this server.\n"
      "# TYPE drover_fleet_reconciles_total counter\ndrover_fleet_reconciles_total {}\n"
      "# HELP drover_fleet_environments_held Environments whose lease this server holds.\n"
      "# TYPE drover_fleet_environments_held gauge\ndrover_fleet_environments_held {}\n",
      impl_->reconciles.load(std::memory_order_relaxed), impl_->held.load());
}

}  // namespace drover::fleet
