#include "schedule/scheduler.h"

#include <fmt/format.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "common/log.h"
#include "metrics/registry.h"
#include "runtime/work_queue.h"
#include "store/origin.h"

namespace drover::schedule {
namespace {

constexpr int64_t kCleanupEveryMs = 60 * 1000;
// Firings due within this much of each other are recorded and run as one batch.
constexpr int64_t kCoalesceMs = 20;
// How long a firing may stay pending before the leader takes it for interrupted.
constexpr int64_t kPendingCheckMs = 5 * 1000;
// The built-in cleanup's firings are recorded under this (tenant, name): exactly once per
// minute across servers too. Not a tenant's schedule: not listed.
constexpr const char* kSystemTenant = "_system";
constexpr const char* kCleanupName = "cleanup";
// The scheduler's one work queue key: a round of firing what is due.
constexpr const char* kRoundKey = "round";

}  // namespace

struct Scheduler::Impl : std::enable_shared_from_this<Scheduler::Impl> {
  Impl(ScheduleService& s, env::Services& e, coord::Coordinator& c, store::Store& st,
       SchedulerOptions o)
      : schedules(s), envs(e), coord(c), store(st), opts(std::move(o)) {
    queue = std::make_unique<runtime::WorkQueue>(
        runtime::WorkQueueOptions{.name = "scheduler",
                                  .workers = 1,
                                  .backoff_base = std::chrono::milliseconds(200),
                                  .backoff_max = std::chrono::seconds(5),
                                  .clock = &SystemClock::Get()},
        [this](const std::string&) { return Handle(); });
  }

  ScheduleService& schedules;
  env::Services& envs;
  coord::Coordinator& coord;
  store::Store& store;
  SchedulerOptions opts;

  // One key, one worker: rounds run one at a time, again after what Round() says, at once on
  // a change, a trigger or a poke.
  std::unique_ptr<runtime::WorkQueue> queue;
  std::mutex mu;
  std::condition_variable cv;
  bool stopped = false;                             // GUARDED_BY(mu)
  bool dirty = true;                                // GUARDED_BY(mu): schedules changed
  std::vector<std::pair<Schedule, Firing>> manual;  // GUARDED_BY(mu): recorded, to run
  int sub = -1;
  int in_flight = 0;  // GUARDED_BY(mu): batches whose actions are still running

  // What the loop will fire next, per schedule (leader only). Loop thread only.
  struct Entry {
    Schedule schedule;
    int64_t due = 0;
    std::string kind = "schedule";
  };
  using Key = std::pair<std::string, std::string>;
  std::map<Key, Entry> entries;
  std::set<std::pair<int64_t, Key>> timeline;  // (due, schedule) of every entry: earliest first
  std::map<Key, int64_t> known;                // modify_index of every schedule placed

  void Enqueue(const Key& key, Entry e) {
    if (auto it = entries.find(key); it != entries.end()) timeline.erase({it->second.due, key});
    timeline.insert({e.due, key});
    entries[key] = std::move(e);
  }
  void Unschedule(const Key& key) {
    if (auto it = entries.find(key); it != entries.end()) {
      timeline.erase({it->second.due, key});
      entries.erase(it);
    }
  }
  bool loaded = false;
  int64_t next_cleanup = 0;
  int64_t next_pending_check = 0;

  metrics::Histogram lag{{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  std::atomic<uint64_t> fired{0}, failed{0};

  void Poke() {
    std::lock_guard lock(mu);
    dirty = true;
  }

  runtime::Outcome Handle() {
    store::ScopedOrigin origin({"scheduler", "system", ""});  // the actor of its change records
    bool reload;
    std::vector<std::pair<Schedule, Firing>> triggers;
    {
      std::lock_guard lock(mu);
      reload = std::exchange(dirty, false);
      triggers = std::exchange(manual, {});
    }
    if (!triggers.empty()) Execute(std::move(triggers));
    return runtime::Outcome::After(Round(reload));
  }

  // One round as (maybe) the leader; how long to sleep.
  std::chrono::milliseconds Round(bool reload) {
    auto leader = coord.Leader();
    if (!leader) {
      loaded = false;  // a new leadership starts from the store
      return std::chrono::seconds(1);
    }
    int64_t now = schedules.NowMillis();
    if (!loaded) {
      if (!Load(now)) return std::chrono::seconds(1);
    } else if (reload && !Sync(now)) {
      Poke();  // try again next round
    }
    if (now >= next_pending_check) {
      FinishInterrupted(now);
      next_pending_check = now + kPendingCheckMs;
    }
    // Everything due, in one recorded batch.
    std::vector<std::pair<Schedule, Firing>> due;
    for (auto it = timeline.begin(); it != timeline.end() && it->first <= now; ++it) {
      const auto& e = entries.at(it->second);
      due.push_back({e.schedule, Firing{e.schedule.tenant, e.schedule.name, e.due, 0, e.kind, "",
                                        "", opts.server_id}});
    }
    if (now >= next_cleanup) {
      int64_t at = now / kCleanupEveryMs * kCleanupEveryMs;
      due.push_back({CleanupSchedule(), Firing{kSystemTenant, kCleanupName, at, 0, "schedule", "",
                                               "", opts.server_id}});
      next_cleanup = at + kCleanupEveryMs;
    }
    if (!due.empty()) {
      if (!Run(due, &*leader)) return std::chrono::milliseconds(200);  // retry soon
      int64_t after = schedules.NowMillis();
      for (const auto& [s, f] : due) {
        Key key{s.tenant, s.name};
        auto it = entries.find(key);
        if (it == entries.end()) continue;
        // From the time just fired: normally the next one ahead; after a long stall of this
        // leader, the latest missed one once (never each missed one in turn).
        auto next = NextDue(s.spec, FromUnixMillis(f.due_ms), FromUnixMillis(s.created_at_ms),
                            FromUnixMillis(after));
        if (next) {
          Entry e = std::move(it->second);
          e.due = ToUnixMillis(next->at);
          e.kind = next->catch_up ? "catch-up" : "schedule";
          Enqueue(key, std::move(e));
        } else {
          Unschedule(key);  // a one-shot that fired
        }
      }
    }
    int64_t earliest = next_cleanup;
    if (!timeline.empty()) earliest = std::min(earliest, timeline.begin()->first);
    now = schedules.NowMillis();
    // Firings a few ms apart go out together (one commit for many): at most kCoalesceMs late.
    int64_t wait = std::max<int64_t>(earliest - now, due.empty() ? 0 : kCoalesceMs);
    return std::chrono::milliseconds(std::clamp<int64_t>(wait, 0, 30000));
  }

  // Firings whose server died between recording them and finishing their action: run again.
  void FinishInterrupted(int64_t now) {
    auto pending = schedules.Pending(now - kPendingCheckMs);
    if (!pending.ok() || pending->empty()) return;
    std::vector<std::pair<Schedule, Firing>> batch;
    std::vector<Firing> orphans;
    for (auto& f : *pending) {
      if (f.tenant == kSystemTenant && f.name == kCleanupName) {
        batch.push_back({CleanupSchedule(), std::move(f)});
      } else if (auto found = schedules.Get(f.tenant, f.name); found.ok()) {
        batch.push_back({std::move(*found), std::move(f)});
      } else {
        f.status = "failed";
        f.result = "the schedule is gone";
        orphans.push_back(std::move(f));
      }
    }
    if (Status s = schedules.Finish(orphans); !s.ok()) {
      LogWarn("recording firing outcomes: {}", s.message());
    }
    Execute(std::move(batch), " (finished by " + opts.server_id + " after its server stopped)");
  }

  static Schedule CleanupSchedule() {
    Schedule s;
    s.tenant = kSystemTenant;
    s.name = kCleanupName;
    s.spec.action.type = "cleanup";
    return s;
  }

  // Reads every schedule and where each stands: the next due time after the last one fired
  // (or its creation); a due time already past was missed and fires once now (catch_up).
  bool Load(int64_t now) {
    auto all = schedules.All();
    auto last = schedules.LastDues();
    if (!all.ok() || !last.ok()) return false;
    entries.clear();
    timeline.clear();
    known.clear();
    for (auto& s : *all) {
      auto it = last->find({s.tenant, s.name});
      Place(std::move(s), it != last->end() ? std::optional(it->second) : std::nullopt, now);
    }
    loaded = true;
    return true;
  }

  // After schedules changed: reads only the new and changed ones, drops the deleted ones.
  bool Sync(int64_t now) {
    auto versions = schedules.Versions();
    if (!versions.ok()) return false;
    std::set<Key> seen;
    for (const auto& v : *versions) {
      Key key{v.tenant, v.name};
      seen.insert(key);
      if (auto k = known.find(key); k != known.end() && k->second == v.modify_index) continue;
      auto s = schedules.Get(v.tenant, v.name);
      auto last = schedules.LastDue(v.tenant, v.name);
      if (!s.ok() || !last.ok()) return false;
      Place(std::move(*s), *last, now);
    }
    for (auto it = known.begin(); it != known.end();) {
      if (seen.count(it->first)) {
        ++it;
        continue;
      }
      Unschedule(it->first);
      it = known.erase(it);
    }
    return true;
  }

  // Queues a schedule's next firing: the next due time after the last one fired (or its
  // creation); a due time already past was missed (no leader ran then) and fires once now,
  // for the latest missed time (catch_up), or is skipped.
  void Place(Schedule s, std::optional<int64_t> last_due, int64_t now) {
    Key key{s.tenant, s.name};
    known[key] = s.modify_index;
    Unschedule(key);
    if (s.spec.window) return;  // windows are levels the fleet controller holds
    std::optional<TimePoint> last;
    if (last_due) last = FromUnixMillis(*last_due);
    auto next = NextDue(s.spec, last, FromUnixMillis(s.created_at_ms), FromUnixMillis(now));
    if (!next) return;
    int64_t at = ToUnixMillis(next->at);
    Enqueue(key, Entry{std::move(s), at, next->catch_up ? "catch-up" : "schedule"});
  }

  // Records the firings (fenced when `lease`) and runs the actions of the ones recorded now.
  // False when the store or the lease refused (nothing ran).
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
    std::vector<std::pair<Schedule, Firing>> run;
    for (auto& f : *recorded) run.push_back({*by_key[{f.tenant, f.name, f.due_ms}], std::move(f)});
    Execute(std::move(run));
    return true;
  }

  // Runs the actions of recorded firings and records their outcomes (`note` appended to each
  // result). The actions complete on the store's completion thread: the next batch need not
  // wait for this one, and a batch's scale actions share group commits.
  void Execute(std::vector<std::pair<Schedule, Firing>> batch, std::string note = "") {
    if (batch.empty()) return;
    struct Outcomes {
      std::vector<Firing> firings;
      std::atomic<size_t> left;
    };
    auto out = std::make_shared<Outcomes>();
    for (auto& [s, f] : batch) out->firings.push_back(f);
    out->left = out->firings.size();
    {
      std::lock_guard lock(mu);
      ++in_flight;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Start(batch[i].first, batch[i].second.due_ms,
            [this, self = shared_from_this(), out, i, note,
             action = batch[i].first.spec.action](Status st) {
              auto& f = out->firings[i];
              f.status = st.ok() ? "ok" : "failed";
              f.result = (st.ok() ? Describe(action) : st.message()) + note;
              if (f.kind != "manual") {
                lag.Observe(static_cast<double>(std::max<int64_t>(f.fired_at_ms - f.due_ms, 0)) /
                            1000.0);
              }
              (st.ok() ? fired : failed).fetch_add(1, std::memory_order_relaxed);
              if (!st.ok()) LogWarn("schedule {}/{}: {}", f.tenant, f.name, st.message());
              if (out->left.fetch_sub(1) != 1) return;
              schedules.FinishAsync(std::move(out->firings), [this, self](Status s) {
                if (!s.ok()) LogWarn("recording firing outcomes: {}", s.message());
                std::lock_guard lock(mu);
                --in_flight;
                cv.notify_all();
              });
            });
    }
  }

  static std::string Describe(const Action& a) {
    if (a.type == "scale") return fmt::format("{} scaled to {}", a.environment, a.capacity);
    if (a.type == "start_workflow") return fmt::format("started an execution of {}", a.workflow);
    if (a.type == "stop") return fmt::format("{} scaled to 0", a.environment);
    return a.type;
  }

  // Starts the action of `s` for its firing due at `due_ms`; `done` gets its outcome (maybe on
  // another thread).
  void Start(const Schedule& s, int64_t due_ms, std::function<void(Status)> done) {
    const auto& a = s.spec.action;
    if (a.type == "start_workflow") {
      if (!opts.start_workflow) return done(Status::Unavailable("workflows are not running"));
      return opts.start_workflow(
          s.tenant, a.workflow, a.input_json, fmt::format("schedule/{}/{}", s.name, due_ms),
          [done = std::move(done)](Result<std::string> id) { done(id.status()); });
    }
    if (a.type == "scale" || a.type == "stop") {
      envs.environments.Scale(
          s.tenant, a.environment, std::to_string(a.type == "stop" ? 0 : a.capacity),
          [done = std::move(done)](Result<env::Environment> r) { done(r.status()); });
    } else if (a.type == "cleanup") {
      Status s = schedules.PruneFirings(opts.keep_firings).status();
      auto pruned = envs.instances.PruneTerminated(opts.instance_retention.count());
      if (s.ok()) s = pruned.status();
      for (const auto& task : opts.cleanup_tasks) {
        Status t = task();
        if (s.ok()) s = t;
      }
      done(s);
    } else {
      done(Status::InvalidArgument("action " + a.type + " is not available"));
    }
  }
};

Scheduler::Scheduler(ScheduleService& schedules, env::Services& envs, coord::Coordinator& coord,
                     store::Store& store, SchedulerOptions options)
    : impl_(std::make_shared<Impl>(schedules, envs, coord, store, std::move(options))) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  impl_->sub = impl_->store.Subscribe([im = impl_.get()](const store::Change& c) {  // ends in Stop
    bool ours = c.resync || std::find(c.topics.begin(), c.topics.end(), kTopic) != c.topics.end();
    if (!ours) return;
    im->Poke();
    im->queue->Add(kRoundKey);
  });
  impl_->queue->Start();
  impl_->queue->Add(kRoundKey);
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  if (impl_->sub >= 0) impl_->store.Unsubscribe(impl_->sub);
  impl_->queue->Stop(runtime::WorkQueue::kUntilDone);  // a round uses impl_
  // Actions under way finish and are recorded before the store may close. If some take
  // longer, their callbacks keep the state they use alive (they hold impl_).
  std::unique_lock lock(impl_->mu);
  auto deadline = SystemClock::Get().Steady() + impl_->opts.drain;
  if (!SystemClock::Get().WaitUntil(lock, impl_->cv, deadline,
                                    [&] { return impl_->in_flight == 0; })) {
    LogWarn("{} batches of schedule actions still running after {} ms; not waiting longer",
            impl_->in_flight, impl_->opts.drain.count());
  }
}

void Scheduler::Poke() {
  impl_->Poke();
  impl_->queue->Add(kRoundKey);
}

void Scheduler::Trigger(const Schedule& s, std::function<void(Result<Firing>)> done) {
  // Recorded (durably) before the answer, so an acknowledged trigger survives a kill -9: if
  // this server dies before the action finishes, the leader finishes the pending firing.
  impl_->schedules.RecordManual(s, impl_->opts.server_id,
                                [im = impl_, s, done = std::move(done)](Result<Firing> f) {
                                  if (f.ok()) {
                                    {
                                      std::lock_guard lock(im->mu);
                                      im->manual.push_back({s, *f});
                                    }
                                    im->queue->Add(kRoundKey);
                                  }
                                  done(std::move(f));
                                });
}

void Scheduler::RenderMetrics(std::string& out) const {
  out +=
      "# HELP drover_schedule_firing_lag_seconds From a firing's due time to its action.\n"
      "# TYPE drover_schedule_firing_lag_seconds histogram\n";
  impl_->lag.Render(out, "drover_schedule_firing_lag_seconds", "");
  out += fmt::format(
      "# HELP drover_schedule_firings_total Schedule firings run by this server, by outcome.\n"
      "# TYPE drover_schedule_firings_total counter\n"
      "drover_schedule_firings_total{{status=\"ok\"}} {}\n"
      "drover_schedule_firings_total{{status=\"failed\"}} {}\n",
      impl_->fired.load(std::memory_order_relaxed), impl_->failed.load(std::memory_order_relaxed));
}

}  // namespace drover::schedule
