#pragma once
// The worker runtime: a keyed work queue, as Kubernetes controllers use. Work is named by a key
// (an environment, a queue, a periodic task); a key waiting is held once however often it is
// added, is never handled by two workers at once, and a key added while it is being handled is
// handled again after. The handler says what comes next: done, again after a delay (periodic
// work, a deadline), or failed — then the key is retried with per-key exponential backoff.
// Start() runs the workers; Stop() stops taking work, lets handlers under way finish (up to a
// drain timeout) and joins. docs/architecture.md.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace drover::runtime {

struct WorkQueueOptions {
  std::string name;  // for logs and metrics
  int workers = 1;
  std::chrono::milliseconds backoff_base{100};  // the first retry of a failing key
  std::chrono::milliseconds backoff_max{std::chrono::minutes(5)};
  // Whose time delays and backoffs follow (null: the system clock; tests: a FakeClock).
  const Clock* clock = nullptr;
};

// What the handler of a key decides.
struct Outcome {
  Status status;  // not OK: retried with backoff (and logged)
  // With an OK status: handle the key again after this long (nullopt: only when added again).
  std::optional<std::chrono::milliseconds> requeue_after;

  static Outcome Done() { return {}; }
  static Outcome After(std::chrono::milliseconds d) { return {Status::Ok(), d}; }
  static Outcome Failed(Status s) { return {std::move(s), std::nullopt}; }
};

class WorkQueue {
 public:
  using Handler = std::function<Outcome(const std::string& key)>;
  WorkQueue(WorkQueueOptions options, Handler handler);
  ~WorkQueue();  // Stop()

  void Start();
  // Stops taking work; waits up to `drain` for handlers under way; joins the workers.
  void Stop(std::chrono::milliseconds drain = std::chrono::seconds(30));
  // A drain with no end: for queues whose handlers use their owner, which is destroyed once
  // Stop returns (a handler left running would use freed memory). Their handlers' own
  // timeouts (store, provider commands) bound the wait.
  static constexpr std::chrono::milliseconds kUntilDone = std::chrono::hours(24 * 365);

  // Handle `key` now (or as soon as a worker is free); nothing if it is already waiting to be
  // handled now.
  void Add(const std::string& key);
  // Handle `key` after `delay`, unless it is handled sooner.
  void AddAfter(const std::string& key, std::chrono::milliseconds delay);
  // Forgets `key`'s pending delayed handling and backoff.
  void Forget(const std::string& key);

  // Keys waiting (now or later), for tests and metrics.
  size_t pending() const;
  // Failures of `key` in a row (its backoff step).
  int failures(const std::string& key) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace drover::runtime
