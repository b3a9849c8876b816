#pragma once
// The part of group commit both backends share: running a batch of queued writes in one
// transaction, optimistically without savepoints first, and again with a savepoint per write
// when one of them fails (so the failure rolls back alone).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/function_ref.h"
#include "store/store.h"

namespace drover::store {

struct PendingWrite {
  WriteFn fn;
  DoneFn done;
  std::chrono::steady_clock::time_point queued_at;
};

// The queue between the threads that call Store::Write and a backend's writer thread.
class WriteQueue {
 public:
  // A write still queued (not yet taken by the writer) after `max_wait` is answered
  // Unavailable and never runs: a stalled database refuses writes after a bounded wait, and
  // what it refused was not applied. 0: no limit.
  explicit WriteQueue(size_t max_queued,
                      std::chrono::milliseconds max_wait = std::chrono::milliseconds(0));
  ~WriteQueue();
  // Queues a write; answers it Unavailable at once when the queue is closed or full.
  void Push(WriteFn fn, DoneFn done);
  // Waits until writes are queued and `ready(queued)` holds (re-checked on Wake), or the queue
  // is closed; then moves up to `max` of them into `batch`. False once closed and drained.
  bool Take(std::vector<PendingWrite>& batch, size_t max, FunctionRef<bool(size_t)> ready);
  // Makes a waiting Take re-check its condition.
  void Wake();
  // Refuses new writes; Take drains what is queued, then returns false. Idempotent; false if
  // already closed.
  bool Close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 private:
  void Reap();

  const size_t max_queued_;
  const std::chrono::milliseconds max_wait_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable reap_cv_;
  std::deque<PendingWrite> queue_;   // GUARDED_BY(mu_)
  std::atomic<bool> closed_{false};  // written under mu_
  bool reaper_stop_ = false;         // GUARDED_BY(mu_)
  std::thread reaper_;
};

// Tx::Notify for the backends: adds `topic` to a write transaction's topics once.
Status AddTopic(bool writable, std::vector<std::string>& topics, std::string_view topic);

// What differs between backends around a batch.
struct BatchSteps {
  FunctionRef<Status()> begin;     // open the transaction
  FunctionRef<void()> reset;       // forget per-attempt state (allocated indexes, topics)
  FunctionRef<Status()> commit;    // persist the index, send notifications, COMMIT
  FunctionRef<Status()> rollback;  // abandon the transaction (and anything still deferred)
  // Write i is about to run (deferred statements belong to it).
  FunctionRef<void(size_t i)> on_write;
  // Runs what the writes deferred (Tx::Defer) so far and sets the result of each write whose
  // deferred statement failed. Given `committed` (after the last write of an optimistic
  // attempt), the backend may commit in the same round trip when every statement succeeds,
  // and says so there. Returns the transaction's own status.
  FunctionRef<Status(std::vector<Status>& results, bool* committed)> flush;
};

// Runs `batch` on `tx` and commits. Per-write results go to `results` (one per write). Returns
// the transaction's own status: not OK when begin or commit failed, in which case nothing of
// the batch was committed.
Status RunBatch(Tx& tx, std::vector<PendingWrite>& batch, std::vector<Status>& results,
                const BatchSteps& steps);

}  // namespace drover::store
