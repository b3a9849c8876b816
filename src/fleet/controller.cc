#include "fleet/controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/duration.h"
#include "common/log.h"
#include "control/values.h"
#include "control/variables.h"
#include "fleet/exec_provider.h"
#include "metrics/registry.h"
#include "store/origin.h"

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
        exec(opts.local.data_dir) {
    // A local agent that exits wakes the controller at once (time to repair is milliseconds,
    // not a poll period).
    local.SetOnExit([this] {
      std::lock_guard lock(mu);
      local_exit = true;
      cv.notify_one();
    });
  }

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
  bool stop = false;           // GUARDED_BY(mu)
  bool dirty = false;          // GUARDED_BY(mu): an environment changed, or a lease came or went
  bool local_exit = false;     // GUARDED_BY(mu): a local agent exited
  bool holds_changed = false;  // GUARDED_BY(mu): schedules or watcher variables changed
  uint64_t holds_version = 0;  // controller thread only
  // When the oldest change not yet handled arrived (for the lag metric). GUARDED_BY(mu)
  std::optional<std::chrono::steady_clock::time_point> changed_at;
  int sub = -1;
  // When an environment may start instances again after a failed start or a replacement
  // (exponential backoff), by resource name. Controller thread only.
  std::map<std::string, std::pair<int64_t, int>> backoff;  // until (db ms), attempts
  // Exec instance mode with a `list` command: what it printed last, and when (db ms), by
  // resource name.
  struct Listed {
    int64_t at = 0;
    std::optional<std::set<std::string>> ids;  // nullopt: the last call failed
  };
  std::map<std::string, Listed> listed;
  // Environments told in an event why nothing is done for them (a provider this server does not
  // run, a spec that no longer parses), by resource name and reason: said once per lease.
  std::set<std::string> noted;

  // An environment this server holds, as last reconciled, and when it needs a look again by the
  // clock alone (a heartbeat deadline, a backoff, the idle timeout). Controller thread only.
  struct Tracked {
    env::Environment env;
    int64_t due = kNever;  // database clock, ms
    // Exec instance mode: the live instances seen last, so that the provider deletes them when
    // the environment is deleted (its rows go with it).
    std::vector<env::Instance> provider_instances;
  };
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  std::map<std::string, Tracked> tracked;  // by resource name
  std::chrono::steady_clock::time_point next_full{};

  metrics::Histogram change_lag{LagBuckets()}, deadline_lag{LagBuckets()};
  std::atomic<uint64_t> reconciles{0};
  std::atomic<int64_t> held{0};
  static std::vector<double> LagBuckets() {
    return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  }

  Provider* For(const env::Environment& e) {
    if (!opts.providers.Enabled(e.spec.provider)) return &static_provider;  // see Reconcile
    if (e.spec.provider == "local") return &local;
    if (e.spec.provider == "exec" && e.spec.exec && !e.spec.exec->create.empty()) return &exec;
    return &static_provider;  // static, and exec in group mode: agents join by themselves
  }

  // The capacity for this environment's group at `now` (a window or the watcher may hold it),
  // resolved for its cloud/region; lowers `*due` to when a hold begins or ends.
  std::optional<int64_t> Desired(const env::Environment& e, int64_t now, int64_t* due) {
    auto d = envs.CapacityOf(e, now);
    if (d.next_change_ms) *due = std::min(*due, *d.next_change_ms);
    return d.desired;
  }

  // Exec instance mode with a `list` command: the provider ids it lists, called at most every
  // `every` per environment; null without a list command or when the call failed (an event
  // says why; nothing is judged gone on a failed list).
  const std::set<std::string>* ListedIds(const env::Environment& e, const store::Lease& lease,
                                         int64_t now, int64_t every, int64_t* due) {
    if (For(e) != &exec || e.spec.exec->list.empty()) return nullptr;
    auto& l = listed[ResourceName(e)];
    if (l.at == 0 || now - l.at >= every) {
      l.at = now;
      auto ids = exec.List(e);
      if (ids.ok()) {
        l.ids = std::move(*ids);
      } else {
        l.ids.reset();
        (void)envs.RecordEvent(e, "list-failed", ids.status().message(), &lease);
      }
    }
    *due = std::min(*due, l.at + every);
    return l.ids ? &*l.ids : nullptr;
  }

  // Group mode: asks set_capacity for the desired size when it changed (with backoff on failure).
  Status ApplyGroupSize(const env::Environment& e, const store::Lease& lease, int64_t now,
                        int64_t* due) {
    auto desired = Desired(e, now, due);
    if (!desired) return Status::Ok();
    std::string key = ResourceName(e);
    auto it = applied.find(key);
    if (it != applied.end() && it->second == *desired) return Status::Ok();  // a no-op change
    auto& [until, attempts] = backoff[key];
    if (now < until) {
      *due = std::min(*due, until);
      return Status::Ok();
    }
    Status s = exec.SetCapacity(e, *desired);
    if (!s.ok()) {
      attempts++;
      until = now + std::min<int64_t>(1000LL << std::min(attempts, 8), 300000);
      *due = std::min(*due, until);
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
      bool list = dirty, exited = local_exit, holds = holds_changed;
      auto since = changed_at;
      dirty = local_exit = holds_changed = false;
      changed_at.reset();
      lock.unlock();
      auto start = std::chrono::steady_clock::now();
      bool full = start >= next_full;
      if (full) next_full = start + opts.full_resync;
      if (exited) {
        for (auto& [name, t] : tracked) {
          if (t.env.spec.provider == "local") t.due = 0;
        }
      }
      if (holds) {
        // A window or the watcher's variables changed: every environment may hold anew.
        if (uint64_t v = envs.HoldsVersion(); v != holds_version) {
          holds_version = v;
          for (auto& [name, t] : tracked) t.due = 0;
        }
      }
      auto wait = Pass(full, list || full);
      if (since) {
        change_lag.Observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - *since).count());
      }
      lock.lock();
      auto until = std::min(std::chrono::steady_clock::now() + wait, next_full);
      cv.wait_until(lock, until, [&] { return stop || dirty || local_exit || holds_changed; });
    }
  }

  // One pass: with `list`, compares every environment's version with what it reconciled last
  // (reading only the changed ones) and follows the leases; then reconciles the environments
  // that changed, were just acquired, or are due by the clock (all of them when `full`).
  // Returns how long the loop may sleep before the next one is due.
  std::chrono::milliseconds Pass(bool full, bool list) {
    constexpr std::chrono::milliseconds kRetry{1000};
    auto now = envs.Now();
    if (!now.ok()) return kRetry;  // the store is away: soon again
    if (list) {
      auto versions = envs.Versions();
      if (!versions.ok()) return kRetry;
      std::vector<std::string> names;
      names.reserve(versions->size());
      for (const auto& v : *versions) names.push_back("env/" + v.tenant + "/" + v.name);
      coord.SetResources(names);
      std::map<std::string, Tracked> next;
      for (size_t i = 0; i < versions->size(); ++i) {
        const auto& v = (*versions)[i];
        if (!coord.Held(names[i])) continue;
        auto old = tracked.find(names[i]);
        bool same = old != tracked.end() && old->second.env.modify_index == v.modify_index;
        if (same) {
          next.emplace(names[i], std::move(old->second));
          continue;
        }
        auto e = envs.Get(v.tenant, v.name);
        if (!e.ok()) continue;
        Tracked t{std::move(*e), 0, {}};  // due now
        if (old != tracked.end()) t.provider_instances = std::move(old->second.provider_instances);
        next.emplace(names[i], std::move(t));
      }
      // Deleted environments (gone from the store, not just from this server): the machines an
      // exec provider made for them are deleted through it.
      std::set<std::string> exists(names.begin(), names.end());
      for (auto& [name, t] : tracked) {
        if (exists.count(name)) continue;
        for (const auto& inst : t.provider_instances) {
          Status s = exec.Delete(t.env, inst);
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
      std::erase_if(
          noted, [&](const auto& key) { return !tracked.count(key.substr(0, key.find('\x1f'))); });
      SweepLocal();
    }
    int64_t next_due = kNever;
    for (auto& [name, t] : tracked) {
      if (full || t.due <= *now) {
        auto lease = coord.Held(name);
        if (!lease) {
          t.due = kNever;  // lost meanwhile: the next list pass drops it
          continue;
        }
        t.due = kNever;
        Status s = Reconcile(t.env, *lease, *now, &t.due);
        reconciles.fetch_add(1, std::memory_order_relaxed);
        if (For(t.env) == &exec) RememberProviderInstances(t);
        if (s.code() == Status::Code::kConflict) {
          // Changed under us: read it again and look once more.
          if (auto e = envs.Get(t.env.tenant, t.env.name); e.ok()) t.env = std::move(*e);
          t.due = *now + 1;
        } else if (!s.ok()) {
          LogWarn("reconcile of {}/{}: {}", t.env.tenant, t.env.name, s.message());
          t.due = std::min(t.due, *now + kRetry.count());
        }
      }
      next_due = std::min(next_due, t.due);
    }
    if (next_due == kNever) return opts.full_resync;
    auto after = envs.Now();
    int64_t left = next_due - (after.ok() ? *after : *now);
    return std::chrono::milliseconds(std::clamp<int64_t>(left, 0, opts.full_resync.count()));
  }

  // What the provider made for the environment, for deleting it with the environment. An
  // instance missing from the read is kept: its row can only have gone with the environment
  // (deleted just now, maybe while this reconcile ran), and then it must still be deleted.
  void RememberProviderInstances(Tracked& t) {
    // Terminated ones too: read as gone (not live), they are dropped here, where a row missing
    // from the read would be kept.
    auto insts = envs.Instances(t.env.tenant, t.env.name, /*terminated=*/true);
    if (!insts.ok()) return;  // keep what was known
    std::map<std::string, env::Instance> read;
    for (auto& i : *insts) read.emplace(i.id, std::move(i));
    std::vector<env::Instance> keep;
    for (auto& old : t.provider_instances) {
      if (!read.count(old.id)) keep.push_back(std::move(old));
    }
    for (auto& [id, i] : read) {
      if (Live(i) && !i.provider_id.empty()) keep.push_back(std::move(i));
    }
    t.provider_instances = std::move(keep);
  }

  // Local agents of instances that are no longer live (terminated, or their environment was
  // deleted) are stopped and their dirs removed.
  void SweepLocal() {
    local.Sweep([&](const std::string& id) -> std::optional<bool> {
      auto state = envs.InstanceState(id);
      if (!state.ok()) return std::nullopt;
      if (!*state) return false;
      return **state == "starting" || **state == "running" || **state == "unhealthy";
    });
  }

  // Reconciles one environment at `now` (database clock); lowers `*due` to when it needs a look
  // again by the clock alone.
  Status Reconcile(const env::Environment& e, const store::Lease& lease, int64_t now,
                   int64_t* due) {
    if (e.spec_error.empty()) noted.erase(ResourceName(e) + "\x1fspec");
    if (opts.providers.Enabled(e.spec.provider)) noted.erase(ResourceName(e) + "\x1fprovider");
    if (!e.spec_error.empty()) {
      // A spec that no longer parses would read as the defaults (capacity 0): act on nothing
      // until it is fixed; the status shows why.
      if (noted.insert(ResourceName(e) + "\x1fspec").second) {
        return envs.RecordEvent(e, "spec-invalid",
                                e.spec_error +
                                    "; nothing is done until the spec "
                                    "is written again",
                                &lease);
      }
      return Status::Ok();
    }
    if (!opts.providers.Enabled(e.spec.provider)) {
      // E.g. a local environment from before --providers, on a server without local: nothing
      // runs on this host for it; said once per lease.
      if (noted.insert(ResourceName(e) + "\x1fprovider").second) {
        return envs.RecordEvent(
            e, "provider-disabled",
            fmt::format("provider {} is not enabled on this server (drover server --providers); "
                        "nothing is started",
                        e.spec.provider),
            &lease);
      }
      return Status::Ok();
    }
    Provider* provider = For(e);
    auto insts = envs.Instances(e.tenant, e.name);
    if (!insts.ok()) return insts.status();
    const auto& health = e.spec.health;
    int64_t grace = health.heartbeat_interval.count() * health.unhealthy_after;
    // The list is asked as often as heartbeats are judged, and a new instance may be missing
    // from it for as long (clouds list new machines with a delay).
    int64_t list_every = std::max<int64_t>(grace, 1000);
    const std::set<std::string>* provider_ids = ListedIds(e, lease, now, list_every, due);
    std::vector<int64_t> replacements;  // restart counts of the replacements to start

    // 1. Health: gone or silent instances are unhealthy; unhealthy ones are replaced per policy.
    for (auto inst : *insts) {
      if (!Live(inst)) continue;
      int64_t since = inst.updated_at_ms;  // when it became unhealthy (its row says)
      if (inst.state != "unhealthy") {
        std::string why;
        auto alive = provider->Alive(e, inst);
        int64_t last = inst.last_heartbeat_ms.value_or(inst.created_at_ms);
        // A starting agent gets the start-up time of a first heartbeat on top (fetching a
        // repository may come first); heartbeats another server buffers arrive within a flush
        // period (env/heartbeats.h).
        int64_t allowed = (inst.last_heartbeat_ms ? grace : grace + 30000) +
                          env::HeartbeatBuffer::kDefaultPeriod.count();
        // An agent run by cron (--once) is silent between runs: it is judged by the age of its
        // last run (or heartbeat) against its interval, missed runs counted like heartbeats,
        // plus one interval (at most a minute) for cron's jitter and cc-a-delay.
        bool cron = inst.run_mode == "once" && inst.run_interval_ms > 0;
        if (cron) {
          if (inst.last_run) last = std::max(last, inst.last_run->finished_at_ms);
          allowed = inst.run_interval_ms * std::max<int64_t>(health.unhealthy_after, 1) +
                    std::min<int64_t>(inst.run_interval_ms, 60000);
        }
        if (alive && !*alive) {
          why = "its agent process is gone";
        } else if (provider_ids && !inst.provider_id.empty() &&
                   !provider_ids->count(inst.provider_id) &&
                   now - inst.created_at_ms > list_every) {
          why = "the provider's list no longer has it (" + inst.provider_id + ")";
        } else if (now - last > allowed) {
          auto silent = FormatDuration(std::chrono::milliseconds((now - last) / 1000 * 1000));
          why = cron ? fmt::format("no run for {} (cron runs it every {})", silent,
                                   FormatDuration(std::chrono::milliseconds(inst.run_interval_ms)))
                     : fmt::format("no heartbeat for {}", silent);
          deadline_lag.Observe(static_cast<double>(now - last - allowed) / 1000.0);
        }
        if (why.empty()) {
          *due = std::min(*due, last + allowed + 1);
          // A process the provider watches (local agents) is looked at every resync.
          if (alive) *due = std::min(*due, now + opts.resync.count());
          continue;
        }
        auto moved = envs.Transition(inst, "unhealthy", "unhealthy", why, &lease);
        if (!moved.ok()) return moved.status();
        if (!*moved) continue;
        inst.state = "unhealthy";
        inst.state_reason = why;
        since = now;
      }
      // Unhealthy: the restart policy decides. An instance that ran 10 minutes before it failed
      // starts a fresh count (a crash loop is what the count and the backoff are for). The
      // backoff runs from the time in its row, so a server taking over goes on with it.
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
      if (now < since + delay) {
        *due = std::min(*due, since + delay);
        continue;
      }
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
      }
    }
    if (!provider->StartsInstances()) {
      // static: desired is shown against joined agents; exec group: the group sizes itself.
      if (e.spec.exec && !e.spec.exec->set_capacity.empty()) {
        return ApplyGroupSize(e, lease, now, due);
      }
      return Status::Ok();
    }

    // 2. Size: start the missing, terminate extras newest first.
    std::optional<int64_t> desired = Desired(e, now, due);
    if (!desired) return Status::Ok();  // the capacity map leaves this group alone
    insts = envs.Instances(e.tenant, e.name);
    if (!insts.ok()) return insts.status();

    // Idle: no spec or scale change and no run reported for idle_timeout → scale to 0.
    if (e.spec.idle_timeout.count() > 0 && *desired > 0) {
      int64_t activity = e.updated_at_ms;
      for (const auto& i : *insts) {
        if (i.last_run) activity = std::max(activity, i.last_run->finished_at_ms);
      }
      *due = std::min(*due, activity + e.spec.idle_timeout.count() + 1);
      if (now - activity > e.spec.idle_timeout.count()) {
        std::string why =
            fmt::format("idle: no activity for {} (idle_timeout {}); scaled to 0",
                        FormatDuration(std::chrono::milliseconds((now - activity) / 1000 * 1000)),
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
      if (now < until) {  // backing off after failures or a replacement
        *due = std::min(*due, until);
        break;
      }
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
        until = now + std::min<int64_t>(1000LL << std::min(attempts, 8), 300000);
        *due = std::min(*due, until);
        auto f = envs.Transition(inst, "failed", "start-failed",
                                 "the provider could not start it: " + started.status().message(),
                                 &lease);
        if (!f.ok()) return f.status();
        break;
      }
      DROVER_RETURN_IF_ERROR(
          envs.SetProviderInfo(*id, started->provider_id, started->address, started->data));
      attempts = 0;
      // Instances this reconcile started were not among those it judged: look again soon, when
      // their deadlines and processes are known.
      *due = std::min(*due, now + opts.resync.count());
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
    auto has = [&](std::string_view t) {
      return std::find(c.topics.begin(), c.topics.end(), t) != c.topics.end();
    };
    // What the capacity holds (windows) are built from: schedules and watcher variables.
    if (c.resync || has("schedules") || has(control::kWatcherTopic)) {
      std::lock_guard lock(im->mu);
      im->holds_changed = true;
      im->cv.notify_one();
    }
    bool ours = c.resync || has(env::kTopic);
    if (!ours) return;
    std::lock_guard lock(im->mu);
    im->dirty = true;
    if (!im->changed_at) im->changed_at = std::chrono::steady_clock::now();
    im->cv.notify_one();
  });
  impl_->thread = std::thread([im = impl_.get()] {
    store::ScopedOrigin origin({"controller", "system", ""});  // the actor of its change records
    im->Loop();
  });
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

void Controller::ReconcileAll() { impl_->Pass(true, true); }

void Controller::Poke() {
  std::lock_guard lock(impl_->mu);
  impl_->dirty = true;
  impl_->cv.notify_one();
}

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
