#include "runtime/blocking_pool.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace drover::runtime {

using SteadyClock = std::chrono::steady_clock;

struct BlockingPool::Impl {
  explicit Impl(BlockingPoolOptions o) : opts(o) {}

  void Work() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, nothing left
      auto [at, work] = std::move(queue.front());
      queue.pop_front();
      bool in_time = !stopping && SteadyClock::now() - at <= opts.queue_timeout;
      ++busy;
      lock.unlock();
      work(in_time);
      lock.lock();
      --busy;
    }
  }

  const BlockingPoolOptions opts;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // GUARDED_BY(mu)
  int busy = 0;           // GUARDED_BY(mu)
  std::deque<std::pair<SteadyClock::time_point, std::function<void(bool)>>>
      queue;  // GUARDED_BY(mu)
  std::vector<std::thread> threads;
};

BlockingPool::BlockingPool(BlockingPoolOptions options) : impl_(std::make_unique<Impl>(options)) {
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    impl_->threads.emplace_back([im = impl_.get()] { im->Work(); });
  }
}

BlockingPool::~BlockingPool() { Stop(); }

bool BlockingPool::TrySubmit(std::function<void(bool)> work) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping || impl_->queue.size() >= impl_->opts.queue_limit) return false;
    impl_->queue.emplace_back(SteadyClock::now(), std::move(work));
  }
  impl_->cv.notify_one();
  return true;
}

void BlockingPool::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) t.join();
}

size_t BlockingPool::queued() const {
  std::lock_guard lock(impl_->mu);
  return impl_->queue.size();
}

int BlockingPool::busy() const {
  std::lock_guard lock(impl_->mu);
  return impl_->busy;
}

}  // namespace drover::runtime
