#include "queues/receive_waiters.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace drover::queues {

struct ReceiveWaiters::Impl {
  struct Parked {
    std::string topic;
    Time deadline;
    std::function<void()> wake;
  };

  explicit Impl(store::Store& s) : store(s) {
    sub = store.Subscribe([this](const store::Change& c) { OnChange(c); });
    thread = std::thread([this] { Loop(); });
  }

  // On the store's thread: quick. Picks who wakes; the loop runs them.
  void OnChange(const store::Change& c) {
    std::lock_guard lock(mu);
    if (c.resync) {
      for (auto& [topic, v] : versions) ++v;
      for (auto& [ticket, p] : parked) ready.push_back(std::move(p.wake));
      parked.clear();
    } else {
      for (const auto& t : c.topics) {
        if (!t.starts_with("queue/")) continue;
        ++versions[t];
        TakeOldest(t);
      }
    }
    if (!ready.empty()) cv.notify_one();
  }

  // Moves the longest-waiting receiver of `topic` to `ready`. Tickets grow, so the map's
  // order is arrival order; a scan, since parked receivers are few (one per waiting client).
  bool TakeOldest(const std::string& topic) {
    for (auto it = parked.begin(); it != parked.end(); ++it) {
      if (it->second.topic != topic) continue;
      ready.push_back(std::move(it->second.wake));
      parked.erase(it);
      return true;
    }
    return false;
  }

  void Loop() {
    std::unique_lock lock(mu);
    while (true) {
      Time next = Time::max();
      for (const auto& [t, p] : parked) next = std::min(next, p.deadline);
      rearm = false;
      cv.wait_until(lock, next, [&] { return stopping || !ready.empty() || rearm; });
      auto now = std::chrono::steady_clock::now();
      for (auto it = parked.begin(); it != parked.end();) {
        if (stopping || it->second.deadline <= now) {
          ready.push_back(std::move(it->second.wake));
          it = parked.erase(it);
        } else {
          ++it;
        }
      }
      std::vector<std::function<void()>> run;
      run.swap(ready);
      bool done = stopping;
      lock.unlock();
      for (auto& w : run) w();
      lock.lock();
      if (done && ready.empty() && parked.empty()) return;
    }
  }

  store::Store& store;
  int sub = 0;
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;                               // GUARDED_BY(mu)
  bool rearm = false;                                  // GUARDED_BY(mu): a new deadline
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
      impl_->parked.emplace(ticket, Impl::Parked{std::move(topic), deadline, std::move(wake)});
      impl_->rearm = true;
      impl_->cv.notify_one();
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
  impl_->ready.push_back(std::move(it->second.wake));
  impl_->parked.erase(it);
  impl_->cv.notify_one();
}

void ReceiveWaiters::WakeOne(const std::string& topic) {
  std::lock_guard lock(impl_->mu);
  if (impl_->TakeOldest(topic)) impl_->cv.notify_one();
}

void ReceiveWaiters::Shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    impl_->cv.notify_one();
  }
  if (impl_->thread.joinable()) impl_->thread.join();
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
