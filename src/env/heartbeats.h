#pragma once
// Heartbeats that bring no news (the instance is running and reports what it reported before)
// are soft state, as in Nomad or Consul: kept in memory and written for all instances in one
// transaction per period, with no change index and no notification. What changes something
// (a first heartbeat, facts, the current run) is written at once by the caller instead.
// Readers on this server see the buffered times through Overlay; other servers see them after
// the next flush, which the controller allows for (docs/fleet.md). A crash loses at most one
// period of heartbeat times, never a state.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "store/store.h"

namespace drover::runtime {
class WorkQueue;
}

namespace drover::env {

class HeartbeatBuffer {
 public:
  HeartbeatBuffer(store::Store& store, const Clock& clock,
                  std::chrono::milliseconds period = kDefaultPeriod);
  ~HeartbeatBuffer();  // Stop()

  static constexpr std::chrono::milliseconds kDefaultPeriod{1000};

  // A heartbeat of instance `id`, now. `fingerprint` is the heartbeat's content: the same
  // content again from the instance's own agent key is known to be no news (Quiet) until the
  // instance is seen in another state than running.
  void Record(const std::string& id, std::string fingerprint);
  // A heartbeat with the same content as the last recorded one, while the instance was last
  // seen running: recorded without reading the store. False: take the full path.
  bool Quiet(const std::string& id, const std::string& fingerprint);
  // Forgets what is known about `id` (its state changed).
  void Forget(const std::string& id);
  // The newest buffered heartbeat of `id` on the database clock (ms), if newer than `stored`.
  std::optional<int64_t> Overlay(const std::string& id, std::optional<int64_t> stored) const;
  // Writes what is buffered now.
  Status Flush();
  // Flushes and stops the flusher. Idempotent.
  void Stop();

 private:
  static constexpr const char* kFlushKey = "flush";
  void Schedule();
  store::Store& store_;
  const Clock& clock_;
  std::chrono::milliseconds period_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> pending_;    // GUARDED_BY(mu_): id -> local clock ms
  std::unordered_map<std::string, std::string> quiet_;  // GUARDED_BY(mu_): id -> fingerprint
  int64_t offset_ms_ = 0;  // GUARDED_BY(mu_): database clock minus local clock, at the last flush
  bool stop_ = false;      // GUARDED_BY(mu_)
  bool started_ = false;   // GUARDED_BY(mu_): the flusher runs (from the first heartbeat)
  // Writes what is buffered a period after a heartbeat arrives (runtime/work_queue.h).
  std::unique_ptr<runtime::WorkQueue> flusher_;
};

}  // namespace drover::env
