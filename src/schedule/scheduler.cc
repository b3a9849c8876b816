#include "schedule/scheduler.h"

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "http/metrics.h"

namespace drover::schedule {
namespace {

constexpr int64_t kCleanupEveryMs = 60 * 1000;
// How long a firing may stay pending before the leader takes it for interrupted.
constexpr int64_t kPendingCheckMs = 5 * 1000;
// The built-in cleanup's firings are recorded under this (tenant, name): exactly once per
// minute across servers too. Not a tenant's schedule: not listed.
constexpr const char* kSystemTenant = "_system";
constexpr const char* kCleanupName = "cleanup";

}  // namespace

struct Scheduler::Impl {
  Impl(ScheduleService& s, env::EnvironmentService& e, coord::Coordinator& c, store::Store& st,
       SchedulerOptions o)
      : schedules(s), envs(e), coord(c), store(st), opts(std::move(o)) {}

  ScheduleService& schedules;
  env::EnvironmentService& envs;
  coord::Coordinator& coord;
  store::Store& store;
  SchedulerOptions opts;

  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;                                // GUARDED_BY(mu)
  bool dirty = true;                                // GUARDED_BY(mu): schedules changed
  std::vector<std::pair<Schedule, Firing>> manual;  // GUARDED_BY(mu)
  int sub = -1;

  // What the loop will fire next, per schedule (leader only). Loop thread only.
  struct Entry {
    Schedule schedule;
    int64_t due = 0;
    std::string kind = "schedule";
  };
  std::map<std::pair<std::string, std::string>, Entry> entries;
  bool loaded = false;
  int64_t next_cleanup = 0;
  int64_t next_pending_check = 0;

  http::Histogram lag{{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  std::atomic<uint64_t> fired{0}, failed{0};

  void Loop() {
    std::unique_lock lock(mu);
    while (!stop) {
      bool reload = dirty;
      dirty = false;
      auto triggers = std::move(manual);
      manual.clear();
      lock.unlock();
      for (auto& [s, f] : triggers) Run({{s, f}});
      auto wait = Round(reload);
      lock.lock();
      cv.wait_for(lock, wait, [&] { return stop || dirty || !manual.empty(); });
    }
  }

  // One round as (maybe) the leader; how long to sleep.
  std::chrono::milliseconds Round(bool reload) {
    auto leader = coord.Leader();
    if (!leader) {
      loaded = false;  // a new leadership starts from the store
      return std::chrono::seconds(1);
    }
    int64_t now = schedules.NowMillis();
    if (reload || !loaded) {
      if (!Load(now)) return std::chrono::seconds(1);
    }
    if (now >= next_pending_check) {
      FinishInterrupted(now);
      next_pending_check = now + kPendingCheckMs;
    }
    // Everything due, in one recorded batch.
    std::vector<std::pair<Schedule, Firing>> due;
    for (auto& [key, e] : entries) {
      if (e.due > now) continue;
      due.push_back({e.schedule, Firing{e.schedule.tenant, e.schedule.name, e.due, 0, 0, e.kind, "",
                                        "", opts.server_id}});
    }
    if (now >= next_cleanup) {
      int64_t at = now / kCleanupEveryMs * kCleanupEveryMs;
      Schedule cleanup;
      cleanup.tenant = kSystemTenant;
      cleanup.name = kCleanupName;
      cleanup.spec.action.type = "cleanup";
      due.push_back({cleanup, Firing{kSystemTenant, kCleanupName, at, 0, 0, "schedule", "", "",
                                     opts.server_id}});
      next_cleanup = at + kCleanupEveryMs;
    }
    if (!due.empty()) {
      if (!Run(due, &*leader)) return std::chrono::milliseconds(200);  // retry soon
      for (const auto& [s, f] : due) {
        auto it = entries.find({s.tenant, s.name});
        if (it == entries.end()) continue;
        auto next = NextFire(s.spec, FromUnixMillis(f.due_ms), FromUnixMillis(s.created_at_ms));
        if (next) {
          it->second.due = ToUnixMillis(*next);
          it->second.kind = "schedule";
        } else {
          entries.erase(it);  // a one-shot that fired
        }
      }
    }
    int64_t earliest = next_cleanup;
    for (const auto& [key, e] : entries) earliest = std::min(earliest, e.due);
    now = schedules.NowMillis();
    return std::chrono::milliseconds(std::clamp<int64_t>(earliest - now, 0, 30000));
  }

  // Firings whose server died between recording them and finishing their action: run again.
  void FinishInterrupted(int64_t now) {
    auto pending = schedules.Pending(now - kPendingCheckMs);
    if (!pending.ok() || pending->empty()) return;
    for (auto& f : *pending) {
      Schedule s;
      if (f.tenant == kSystemTenant && f.name == kCleanupName) {
        s.spec.action.type = "cleanup";
      } else if (auto found = schedules.Get(f.tenant, f.name); found.ok()) {
        s = std::move(*found);
      } else {
        f.status = "failed";
        f.result = "the schedule is gone";
        continue;
      }
      Status st = Act(s);
      f.status = st.ok() ? "ok" : "failed";
      f.result = (st.ok() ? Describe(s.spec.action) : st.message()) + " (finished by " +
                 opts.server_id + " after its server stopped)";
    }
    if (Status s = schedules.Finish(*pending); !s.ok()) {
      LogWarn("recording firing outcomes: {}", s.message());
    }
  }

  // Reads every schedule and where each stands: the next due time after the last one fired
  // (or its creation); a due time already past was missed and fires once now (catch_up).
  bool Load(int64_t now) {
    auto all = schedules.All();
    auto last = schedules.LastDues();
    if (!all.ok() || !last.ok()) return false;
    entries.clear();
    for (auto& s : *all) {
      if (s.spec.window) continue;  // windows are levels the fleet controller holds
      auto created = FromUnixMillis(s.created_at_ms);
      auto it = last->find({s.tenant, s.name});
      int64_t base = it != last->end() ? it->second : s.created_at_ms;
      auto next = NextFire(s.spec, FromUnixMillis(base), created);
      if (!next) continue;
      Entry e{s, ToUnixMillis(*next), "schedule"};
      if (e.due <= now - 1000) {
        // Missed (no leader ran at the time): once, for the latest missed due time.
        int64_t latest = e.due;
        for (int i = 0; i < 100000; ++i) {
          auto n = NextFire(s.spec, FromUnixMillis(latest), created);
          if (!n || ToUnixMillis(*n) > now) break;
          latest = ToUnixMillis(*n);
        }
        if (s.spec.catch_up) {
          e.due = latest;
          e.kind = "catch-up";
        } else {
          auto n = NextFire(s.spec, FromUnixMillis(now), created);
          if (!n) continue;
          e.due = ToUnixMillis(*n);
        }
      }
      entries[{s.tenant, s.name}] = std::move(e);
    }
    loaded = true;
    return true;
  }

  // Records the firings (fenced when `lease`), runs the actions of the ones recorded now, and
  // records their outcome. False when the store or the lease refused (nothing ran).
  bool Run(const std::vector<std::pair<Schedule, Firing>>& batch,
           const store::Lease* lease = nullptr) {
    std::vector<Firing> firings;
    for (const auto& [s, f] : batch) firings.push_back(f);
    auto recorded = schedules.Record(std::move(firings), lease);
    if (!recorded.ok()) {
      if (!recorded.status().IsUnavailable()) {
        LogWarn("recording firings: {}", recorded.status().message());
      }
      return false;
    }
    std::map<std::tuple<std::string, std::string, int64_t>, const Schedule*> by_key;
    for (const auto& [s, f] : batch) by_key[{f.tenant, f.name, f.due_ms}] = &s;
    for (auto& f : *recorded) {
      const Schedule* s = by_key[{f.tenant, f.name, f.due_ms}];
      Status st = Act(*s);
      f.status = st.ok() ? "ok" : "failed";
      f.result = st.ok() ? Describe(s->spec.action) : st.message();
      if (f.kind != "manual") {
        lag.Observe(static_cast<double>(std::max<int64_t>(f.fired_at_ms - f.due_ms, 0)) / 1000.0);
      }
      (st.ok() ? fired : failed).fetch_add(1, std::memory_order_relaxed);
      if (!st.ok()) LogWarn("schedule {}/{}: {}", f.tenant, f.name, st.message());
    }
    if (Status s = schedules.Finish(*recorded); !s.ok()) {
      LogWarn("recording firing outcomes: {}", s.message());
    }
    return true;
  }

  static std::string Describe(const Action& a) {
    if (a.type == "scale") return fmt::format("{} scaled to {}", a.environment, a.capacity);
    if (a.type == "stop") return fmt::format("{} scaled to 0", a.environment);
    return a.type;
  }

  Status Act(const Schedule& s) {
    const auto& a = s.spec.action;
    if (a.type == "scale" || a.type == "stop") {
      std::promise<Status> done;
      envs.Scale(s.tenant, a.environment, std::to_string(a.type == "stop" ? 0 : a.capacity),
                 [&done](Result<env::Environment> r) { done.set_value(r.status()); });
      return done.get_future().get();
    }
    if (a.type == "cleanup") {
      auto n = schedules.PruneFirings(opts.keep_firings);
      return n.status();
    }
    return Status::InvalidArgument("action " + a.type + " is not available");
  }
};

Scheduler::Scheduler(ScheduleService& schedules, env::EnvironmentService& envs,
                     coord::Coordinator& coord, store::Store& store, SchedulerOptions options)
    : impl_(std::make_unique<Impl>(schedules, envs, coord, store, std::move(options))) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  impl_->sub = impl_->store.Subscribe([im = impl_.get()](const store::Change& c) {
    bool ours = c.resync || std::find(c.topics.begin(), c.topics.end(), kTopic) != c.topics.end();
    if (!ours) return;
    std::lock_guard lock(im->mu);
    im->dirty = true;
    im->cv.notify_one();
  });
  impl_->thread = std::thread([im = impl_.get()] { im->Loop(); });
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stop) return;
    impl_->stop = true;
    impl_->cv.notify_one();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->sub >= 0) impl_->store.Unsubscribe(impl_->sub);
}

void Scheduler::Poke() {
  std::lock_guard lock(impl_->mu);
  impl_->dirty = true;
  impl_->cv.notify_one();
}

Firing Scheduler::Trigger(const Schedule& s) {
  Firing f{s.tenant,  s.name, impl_->schedules.NowMillis(), 0, 0, "manual",
           "pending", "",     impl_->opts.server_id};
  std::lock_guard lock(impl_->mu);
  impl_->manual.push_back({s, f});
  impl_->cv.notify_one();
  return f;
}

void Scheduler::RenderMetrics(std::string& out) const {
  out += "# TYPE drover_schedule_firing_lag_seconds histogram\n";
  impl_->lag.Render(out, "drover_schedule_firing_lag_seconds", "");
  out += fmt::format(
      "# TYPE drover_schedule_firings_total counter\n"
      "drover_schedule_firings_total{{status=\"ok\"}} {}\n"
      "drover_schedule_firings_total{{status=\"failed\"}} {}\n",
      impl_->fired.load(std::memory_order_relaxed), impl_->failed.load(std::memory_order_relaxed));
}

}  // namespace drover::schedule
