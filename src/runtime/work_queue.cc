#include "runtime/work_queue.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/log.h"

namespace drover::runtime {

using SteadyClock = std::chrono::steady_clock;

struct WorkQueue::Impl {
  Impl(WorkQueueOptions o, Handler h)
      : opts(std::move(o)),
        clock(opts.clock ? *opts.clock : SystemClock::Get()),
        handler(std::move(h)) {}

  // Sets `key` to be handled at `at`, unless it already is sooner. REQUIRES: mu held.
  void Schedule(const std::string& key, SteadyClock::time_point at) {
    auto it = due.find(key);
    if (it != due.end()) {
      if (it->second <= at) return;
      order.erase({it->second, key});
      it->second = at;
    } else {
      due.emplace(key, at);
    }
    order.insert({at, key});
    ++generation;
    cv.notify_one();
  }

  void Unschedule(const std::string& key) {
    auto it = due.find(key);
    if (it == due.end()) return;
    order.erase({it->second, key});
    due.erase(it);
  }

  std::chrono::milliseconds Backoff(int n) const {
    auto d = opts.backoff_base;
    for (int i = 1; i < n && d < opts.backoff_max; ++i) d *= 2;
    return std::min(d, opts.backoff_max);
  }

  void Work() {
    std::unique_lock lock(mu);
    while (!stopping) {
      // The earliest key that is due and not being handled by another worker.
      auto now = clock.Steady();
      auto pick = order.end();
      SteadyClock::time_point next = SteadyClock::time_point::max();
      for (auto it = order.begin(); it != order.end(); ++it) {
        if (active.contains(it->second)) continue;
        if (it->first <= now)
          pick = it;
        else
          next = it->first;
        break;
      }
      if (pick == order.end()) {
        // Until something changes (an add, a handler done, Stop) or the next key is due.
        uint64_t seen = generation;
        std::function<bool()> changed = [&] { return stopping || generation != seen; };
        if (next == SteadyClock::time_point::max()) {
          cv.wait(lock, changed);
        } else {
          clock.WaitUntil(lock, cv, next, changed);
        }
        continue;
      }
      std::string key = pick->second;
      due.erase(key);
      order.erase(pick);
      active.insert(key);
      lock.unlock();
      Outcome out;
      try {
        out = handler(key);
      } catch (const std::exception& e) {  // a bug in a handler must not end its worker
        out = Outcome::Failed(Status::Internal(e.what()));
      }
      lock.lock();
      active.erase(key);
      ++generation;
      now = clock.Steady();
      if (!out.status.ok()) {
        int n = ++failures[key];
        auto wait = Backoff(n);
        LogWarn("{}: {} failed ({} in a row), retrying in {} ms: {}", opts.name, key, n,
                wait.count(), out.status.ToString());
        Schedule(key, now + wait);
      } else {
        failures.erase(key);
        if (out.requeue_after) Schedule(key, now + *out.requeue_after);
      }
      cv.notify_all();  // a key this worker held may be due for another; Stop() may wait
    }
  }

  const WorkQueueOptions opts;
  const Clock& clock;
  const Handler handler;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;    // GUARDED_BY(mu)
  uint64_t generation = 0;  // GUARDED_BY(mu): moves with every change a waiting worker awaits
  std::map<std::string, SteadyClock::time_point> due;               // GUARDED_BY(mu)
  std::set<std::pair<SteadyClock::time_point, std::string>> order;  // GUARDED_BY(mu)
  std::set<std::string> active;                                     // GUARDED_BY(mu)
  std::map<std::string, int> failures;                              // GUARDED_BY(mu)
  std::vector<std::thread> threads;
};

WorkQueue::WorkQueue(WorkQueueOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(handler))) {}

WorkQueue::~WorkQueue() { Stop(); }

void WorkQueue::Start() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->threads.empty() || impl_->stopping) return;
  for (int i = 0; i < std::max(1, impl_->opts.workers); ++i) {
    // The threads share the state: one that outlives a drain that gave up keeps it alive.
    impl_->threads.emplace_back([im = impl_] { im->Work(); });
  }
}

void WorkQueue::Stop(std::chrono::milliseconds drain) {
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
    if (!impl_->clock.WaitUntil(lock, impl_->cv, impl_->clock.Steady() + drain,
                                [&] { return impl_->active.empty(); })) {
      LogWarn("{}: {} handlers still running after {} ms; not waiting longer", impl_->opts.name,
              impl_->active.size(), drain.count());
      for (auto& t : impl_->threads) t.detach();
      impl_->threads.clear();
      return;
    }
    threads.swap(impl_->threads);
  }
  for (auto& t : threads) t.join();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(impl_->mu);
  impl_->Schedule(key, impl_->clock.Steady());
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard lock(impl_->mu);
  impl_->Schedule(key, impl_->clock.Steady() + delay);
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard lock(impl_->mu);
  impl_->Unschedule(key);
  impl_->failures.erase(key);
}

size_t WorkQueue::pending() const {
  std::lock_guard lock(impl_->mu);
  return impl_->due.size();
}

int WorkQueue::failures(const std::string& key) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->failures.find(key);
  return it == impl_->failures.end() ? 0 : it->second;
}

}  // namespace drover::runtime
