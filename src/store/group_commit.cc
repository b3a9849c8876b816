#include "store/group_commit.h"

#include <algorithm>
#include <exception>

namespace drover::store {
namespace {

Status RunWrite(const WriteFn& fn, Tx& tx) {
  tx.StartWrite();
  try {
    return fn(tx);
  } catch (const std::exception& e) {  // a bug in a write function must not kill the writer
    return Status::Internal(e.what());
  }
}

bool AnyFailed(const std::vector<Status>& results) {
  return std::any_of(results.begin(), results.end(), [](const Status& r) { return !r.ok(); });
}

// One attempt. Without savepoints, the first failing write rolls the whole attempt back and
// sets *failed (unless it is the only write: then its error is final). With savepoints, each
// write (and what it deferred) runs inside its own savepoint and a failure rolls back alone.
Status Attempt(Tx& tx, std::vector<PendingWrite>& batch, std::vector<Status>& results,
               const BatchSteps& steps, bool savepoints, bool* failed) {
  auto run = [&tx](std::string_view sql) { return tx.Exec(sql).status(); };
  results.assign(batch.size(), Status::Ok());
  steps.reset();
  tx.TruncateChangeRows(0);
  *failed = false;
  Status s = steps.begin();
  if (!s.ok()) return s;
  auto abandon = [&]() -> Status {
    *failed = batch.size() > 1;
    Status r = steps.rollback();
    return *failed ? Status::Ok() : r;
  };
  for (size_t i = 0; i < batch.size() && s.ok(); ++i) {
    if (savepoints && !(s = run("SAVEPOINT w")).ok()) break;
    steps.on_write(i);
    size_t rows = tx.change_rows();
    results[i] = RunWrite(batch[i].fn, tx);
    if (!savepoints) {
      if (!results[i].ok()) return abandon();
      continue;
    }
    if (results[i].ok() && !(s = steps.flush(results, nullptr)).ok()) break;
    if (!results[i].ok()) tx.TruncateChangeRows(rows);  // its change records go with it
    s = run(results[i].ok() ? "RELEASE w" : "ROLLBACK TO w");
  }
  // The change records of every write that stands, in one go (ahead of the commit).
  if (s.ok()) s = tx.FlushChangeRows();
  if (s.ok() && savepoints) s = steps.flush(results, nullptr);
  bool committed = false;
  if (s.ok() && !savepoints) {
    s = steps.flush(results, &committed);
    if (s.ok() && AnyFailed(results)) return abandon();  // the pipelined COMMIT did not run
  }
  if (s.ok() && !committed) s = steps.commit();
  if (!s.ok()) (void)steps.rollback();
  return s;
}

}  // namespace

Status AddTopic(bool writable, std::vector<std::string>& topics, std::string_view topic) {
  if (!writable) return Status::Internal("Notify outside a write");
  if (std::find(topics.begin(), topics.end(), topic) == topics.end()) topics.emplace_back(topic);
  return Status::Ok();
}

WriteQueue::WriteQueue(size_t max_queued, std::chrono::milliseconds max_wait)
    : max_queued_(max_queued), max_wait_(max_wait) {
  if (max_wait_.count() > 0) reaper_ = std::thread([this] { Reap(); });
}

WriteQueue::~WriteQueue() {
  {
    std::lock_guard lock(mu_);
    reaper_stop_ = true;
  }
  reap_cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
}

void WriteQueue::Reap() {
  std::unique_lock lock(mu_);
  while (!reaper_stop_) {
    if (queue_.empty()) {
      // A look every second (at most max_wait): a write is refused within max_wait + 1 s of
      // being queued, and no Push ever wakes the reaper (under load the queue empties and
      // fills once per batch: a wake-up each time would cost a context switch per batch).
      auto every = std::min<std::chrono::milliseconds>(max_wait_, std::chrono::seconds(1));
      const Clock& clock = SystemClock::Get();
      clock.WaitUntil(lock, reap_cv_, clock.Steady() + every, [&] { return reaper_stop_; });
      continue;
    }
    auto due = queue_.front().queued_at + max_wait_;
    if (std::chrono::steady_clock::now() < due) {
      SystemClock::Get().WaitUntil(lock, reap_cv_, due, [&] { return reaper_stop_; });
      continue;
    }
    // The oldest writes waited too long for the writer (the database stalls): refuse them.
    std::vector<DoneFn> expired;
    auto now = std::chrono::steady_clock::now();
    while (!queue_.empty() && queue_.front().queued_at + max_wait_ <= now) {
      expired.push_back(std::move(queue_.front().done));
      queue_.pop_front();
    }
    lock.unlock();
    for (auto& done : expired) {
      done(Status::Unavailable(
          "the database did not take the write in time; it was not applied, retry"));
    }
    lock.lock();
  }
}

void WriteQueue::Push(WriteFn fn, DoneFn done) {
  bool closed;
  {
    std::lock_guard lock(mu_);
    closed = closed_;
    if (!closed && queue_.size() < max_queued_) {
      queue_.push_back({std::move(fn), std::move(done), std::chrono::steady_clock::now()});
      cv_.notify_one();
      return;
    }
  }
  done(Status::Unavailable(closed ? "the store is closing" : "write queue is full; retry"));
}

bool WriteQueue::Take(std::vector<PendingWrite>& batch, size_t max,
                      FunctionRef<bool(size_t)> ready) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return closed_ || (!queue_.empty() && ready(queue_.size())); });
  if (queue_.empty()) return false;  // closed and drained
  while (!queue_.empty() && batch.size() < max) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return true;
}

void WriteQueue::Wake() {
  std::lock_guard lock(mu_);  // Take waits under mu_: no lost wake-up
  cv_.notify_one();
}

bool WriteQueue::Close() {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  closed_ = true;
  cv_.notify_all();
  return true;
}

Status RunBatch(Tx& tx, std::vector<PendingWrite>& batch, std::vector<Status>& results,
                const BatchSteps& steps) {
  bool failed = false;
  Status s = Attempt(tx, batch, results, steps, /*savepoints=*/false, &failed);
  if (s.ok() && failed) s = Attempt(tx, batch, results, steps, /*savepoints=*/true, &failed);
  return s;
}

}  // namespace drover::store
