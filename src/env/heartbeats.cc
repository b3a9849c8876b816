#include "env/heartbeats.h"

#include <vector>

#include "common/log.h"
#include "runtime/work_queue.h"

namespace drover::env {

HeartbeatBuffer::HeartbeatBuffer(store::Store& store, const Clock& clock,
                                 std::chrono::milliseconds period)
    : store_(store), clock_(clock), period_(period) {
  flusher_ = std::make_unique<runtime::WorkQueue>(
      runtime::WorkQueueOptions{.name = "heartbeats",
                                .workers = 1,
                                .backoff_base = period,
                                .backoff_max = std::chrono::seconds(30),
                                .clock = &clock},
      [this](const std::string&) {
        Status s = Flush();
        if (!s.ok()) LogWarn("writing buffered heartbeats: {}", s.message());
        return s.ok() ? runtime::Outcome::Done() : runtime::Outcome::Failed(s);
      });
}

HeartbeatBuffer::~HeartbeatBuffer() { Stop(); }

void HeartbeatBuffer::Record(const std::string& id, std::string fingerprint) {
  int64_t now = ToUnixMillis(clock_.Now());
  std::lock_guard lock(mu_);
  if (stop_) return;
  pending_[id] = now;
  if (quiet_.size() > 1000000) quiet_.clear();  // bounded
  quiet_[id] = std::move(fingerprint);
  Schedule();
}

// GUARDED_BY(mu_): the flusher starts with the first heartbeat and writes within a period.
void HeartbeatBuffer::Schedule() {
  if (!started_) {
    started_ = true;
    flusher_->Start();
  }
  flusher_->AddAfter(kFlushKey, period_);
}

bool HeartbeatBuffer::Quiet(const std::string& id, const std::string& fingerprint) {
  int64_t now = ToUnixMillis(clock_.Now());
  std::lock_guard lock(mu_);
  auto it = quiet_.find(id);
  if (stop_ || it == quiet_.end() || it->second != fingerprint) return false;
  pending_[id] = now;
  Schedule();
  return true;
}

void HeartbeatBuffer::Forget(const std::string& id) {
  std::lock_guard lock(mu_);
  quiet_.erase(id);
}

std::optional<int64_t> HeartbeatBuffer::Overlay(const std::string& id,
                                                std::optional<int64_t> stored) const {
  std::lock_guard lock(mu_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return stored;
  int64_t at = it->second + offset_ms_;
  return stored && *stored >= at ? stored : std::optional<int64_t>(at);
}

Status HeartbeatBuffer::Flush() {
  std::unordered_map<std::string, int64_t> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return Status::Ok();
  int64_t offset = 0;
  std::vector<std::string> moved;  // not running any more: their next heartbeat reads the store
  Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    auto db_now = tx.NowMillis();
    if (!db_now.ok()) return db_now.status();
    offset = *db_now - ToUnixMillis(clock_.Now());
    moved.clear();
    for (const auto& [id, local] : batch) {
      // Only a running instance's time moves: a state the controller set meanwhile stays.
      auto n = tx.Exec(
          "UPDATE instances SET last_heartbeat = CASE WHEN last_heartbeat IS NULL OR"
          " last_heartbeat < ? THEN ? ELSE last_heartbeat END WHERE id = ? AND state = 'running'",
          {local + offset, local + offset, id});
      if (!n.ok()) return n.status();
      if (*n == 0) moved.push_back(id);
    }
    return Status::Ok();
  });
  std::lock_guard lock(mu_);
  if (!s.ok()) {
    // Keep them for the next try (newer ones recorded meanwhile win).
    for (const auto& [id, local] : batch) pending_.emplace(id, local);
    return s;
  }
  offset_ms_ = offset;
  for (const auto& id : moved) quiet_.erase(id);
  return s;
}

void HeartbeatBuffer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  flusher_->Stop(runtime::WorkQueue::kUntilDone);
  if (Status s = Flush(); !s.ok()) LogWarn("writing buffered heartbeats: {}", s.message());
}

}  // namespace drover::env
