#pragma once
// A bounded pool of threads for work that may block (a PostgreSQL round trip, a reconnect), so
// the I/O threads never wait on it: one slow read cannot stall every connection of its thread.
// The queue is bounded: a submission beyond it is refused at once (the caller answers 503), and
// work that waited longer than `queue_timeout` before a thread was free is told so instead of
// run (its caller is answered, not kept waiting behind a stalled database).
#include <chrono>
#include <functional>
#include <memory>

namespace drover::runtime {

struct BlockingPoolOptions {
  int threads = 32;
  size_t queue_limit = 4096;
  std::chrono::milliseconds queue_timeout{std::chrono::seconds(5)};
};

class BlockingPool {
 public:
  explicit BlockingPool(BlockingPoolOptions options);
  ~BlockingPool();  // Stop()

  // Runs `work(true)` on a pool thread, or `work(false)` there when it waited past the queue
  // timeout. False (and nothing runs) when the queue is full or the pool stopped.
  bool TrySubmit(std::function<void(bool in_time)> work);
  // Runs what is queued (as late), then joins the threads.
  void Stop();

  size_t queued() const;
  int busy() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::runtime
