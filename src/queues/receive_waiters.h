#pragma once
// Long-polling receivers parked until their queue has something for them. A committed send
// (or release) of a queue wakes one receiver — the one waiting longest — not every receiver
// of the queue: a thousand consumers on one queue do not all rush the database for each
// message. A receiver that takes a full batch wakes the next (WakeOne), since more may be
// left. Changes come from the store's notifications, so a send through any server sharing
// a PostgreSQL database wakes receivers on every server. Thread-safe.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "store/store.h"

namespace drover::queues {

class ReceiveWaiters {
 public:
  using Time = std::chrono::steady_clock::time_point;
  explicit ReceiveWaiters(store::Store& store);
  ~ReceiveWaiters();  // Shutdown()

  // How many changes of `topic` this server has seen: read it before a receive, and park with
  // it, so a change between the two is not missed.
  uint64_t Version(const std::string& topic) const;
  // Calls `wake` exactly once, off the caller's thread unless at once: at once when `topic`
  // changed after `version` (or after Shutdown), else when a change of `topic` picks this
  // receiver (one per change, the longest waiting first), at `deadline`, at Cancel or at
  // Shutdown. Returns a ticket for Cancel (0 when it ran at once).
  uint64_t Park(std::string topic, uint64_t version, Time deadline, std::function<void()> wake);
  // Wakes the receiver `ticket` now (its client went away); nothing if it already woke.
  void Cancel(uint64_t ticket);
  // Wakes the longest-waiting receiver of `topic`, if any.
  void WakeOne(const std::string& topic);
  // Wakes everyone now; later Parks wake at once.
  void Shutdown();
  bool stopped() const;
  size_t parked() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::queues
