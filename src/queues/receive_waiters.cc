#include "queues/receive_waiters.h"

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "runtime/work_queue.h"

namespace drover::queues {

// Parked receivers live here; their deadlines, and running the wakes off the store's thread,
// are the worker runtime's: a key per parked receiver ("t<ticket>", due at its deadline) and
// "ready" for the wakes a change, a cancel or a full batch picked.
struct ReceiveWaiters::Impl {
  struct Parked {
    std::string topic;
    std::function<void()> wake;
  };

  explicit Impl(store::Store& s)
      : store(s),
        work(runtime::WorkQueueOptions{.name = "queue-receivers"},
             [this](const std::string& key) { return Handle(key); }) {
    work.Start();
    sub = store.Subscribe([this](const store::Change& c) { OnChange(c); });
  }

  static std::string Key(uint64_t ticket) { return "t" + std::to_string(ticket); }

  runtime::Outcome Handle(const std::string& key) {
    std::vector<std::function<void()>> run;
    {
      std::lock_guard lock(mu);
      if (key == "ready") {
        run.swap(ready);
      } else if (auto it = parked.find(std::stoull(key.substr(1))); it != parked.end()) {
        run.push_back(std::move(it->second.wake));  // its deadline
        parked.erase(it);
      }
    }
    for (auto& w : run) w();
    return runtime::Outcome::Done();
  }

  // On the store's thread: quick. Picks who wakes; the worker runs them.
  void OnChange(const store::Change& c) {
    std::lock_guard lock(mu);
    if (c.resync) {
      for (auto& [topic, v] : versions) ++v;
      while (!parked.empty()) Take(parked.begin());
    } else {
      for (const auto& t : c.topics) {
        if (!t.starts_with("queue/")) continue;
        ++versions[t];
        TakeOldest(t);
      }
    }
    if (!ready.empty()) work.Add("ready");
  }

  // Moves a parked receiver to `ready` and drops its deadline. REQUIRES: mu held.
  void Take(std::map<uint64_t, Parked>::iterator it) {
    ready.push_back(std::move(it->second.wake));
    work.Forget(Key(it->first));
    parked.erase(it);
  }

  // The longest-waiting receiver of `topic`. Tickets grow, so the map's order is arrival
  // order; a scan, since parked receivers are few (one per waiting client).
  bool TakeOldest(const std::string& topic) {
    for (auto it = parked.begin(); it != parked.end(); ++it) {
      if (it->second.topic == topic) {
        Take(it);
        return true;
      }
    }
    return false;
  }

  store::Store& store;
  runtime::WorkQueue work;
  int sub = 0;
  mutable std::mutex mu;
  bool stopping = false;                               // GUARDED_BY(mu)
  uint64_t last_ticket = 0;                            // GUARDED_BY(mu)
  std::map<uint64_t, Parked> parked;                   // GUARDED_BY(mu): by ticket
  std::vector<std::function<void()>> ready;            // GUARDED_BY(mu): to wake now
  std::unordered_map<std::string, uint64_t> versions;  // GUARDED_BY(mu)
};

ReceiveWaiters::ReceiveWaiters(store::Store& store) : impl_(std::make_unique<Impl>(store)) {}

ReceiveWaiters::~ReceiveWaiters() {
  Shutdown();
  impl_->store.Unsubscribe(impl_->sub);
}

uint64_t ReceiveWaiters::Version(const std::string& topic) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->versions.find(topic);
  return it == impl_->versions.end() ? 0 : it->second;
}

uint64_t ReceiveWaiters::Park(std::string topic, uint64_t version, Time deadline,
                              std::function<void()> wake) {
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->versions.find(topic);
    uint64_t now = it == impl_->versions.end() ? 0 : it->second;
    if (!impl_->stopping && now == version) {
      uint64_t ticket = ++impl_->last_ticket;
      impl_->parked.emplace(ticket, Impl::Parked{std::move(topic), std::move(wake)});
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      impl_->work.AddAfter(Impl::Key(ticket), std::max(left, std::chrono::milliseconds(0)));
      return ticket;
    }
  }
  wake();
  return 0;
}

void ReceiveWaiters::Cancel(uint64_t ticket) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->parked.find(ticket);
  if (it == impl_->parked.end()) return;
  impl_->Take(it);
  impl_->work.Add("ready");
}

void ReceiveWaiters::WakeOne(const std::string& topic) {
  std::lock_guard lock(impl_->mu);
  if (impl_->TakeOldest(topic)) impl_->work.Add("ready");
}

void ReceiveWaiters::Shutdown() {
  std::vector<std::function<void()>> rest;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    while (!impl_->parked.empty()) impl_->Take(impl_->parked.begin());
    rest.swap(impl_->ready);
  }
  // Wakes under way finish; then everyone left is woken here (later Parks wake at once).
  impl_->work.Stop(runtime::WorkQueue::kUntilDone);
  for (auto& w : rest) w();
}

bool ReceiveWaiters::stopped() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stopping;
}

size_t ReceiveWaiters::parked() const {
  std::lock_guard lock(impl_->mu);
  return impl_->parked.size();
}

}  // namespace drover::queues
