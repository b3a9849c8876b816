#pragma once
// The log store (docs/logs.md): lines of instances (their output, their runs' output, files
// their agents ship), kept per tenant with a retention and a size cap. Appending never blocks:
// lines wait in a bounded buffer and one writer thread commits them in batches, telling each
// sender once its lines are committed; what does not fit is refused whole and counted
// (drover_log_lines_dropped_total), for the sender to send again. Thread-safe.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "logs/pattern.h"
#include "metrics/registry.h"
#include "store/store.h"

namespace drover::logs {

// The store topic notified when lines are committed. Log batches take no change index (a flood
// of lines must not move the index cached and blocking reads key on), so followers wait for
// this topic by http::Waiters::Mark, not by index.
inline constexpr std::string_view kTopic = "logs";

struct LogLine {
  int64_t at_ms = 0;     // when it was written (the shipper's clock)
  std::string stream;    // "run", "output", or a shipped file's name
  std::string line;      // without its newline
  std::string trace_id;  // 32 hex digits, or "" for none
};

// Where a stored line is: lines are ordered by (seq, n), the log sequence number of the batch
// that wrote it (the `log_seq` counter, taken under the same row lock order on every server, so
// batches commit in seq order) and its place in the batch. As text "seq.n" (an SSE event id, a
// cursor).
struct Position {
  int64_t seq = 0;
  int64_t n = 0;
  std::string ToString() const;
  static std::optional<Position> Parse(std::string_view s);
  auto operator<=>(const Position&) const = default;
};

struct StoredLine {
  Position pos;
  int64_t at_ms = 0;
  std::string environment, instance, stream, line, trace_id;
};

struct LogQuery {
  std::string tenant{};
  std::string environment{}, instance{}, trace_id{};  // "" for any
  int64_t since_ms = 0, until_ms = 0;                 // `at` in [since, until); 0 for open
  std::optional<Pattern> q{};
  // Lines after this position, oldest first. Without it: the last `limit` lines (of those from
  // `since` on when given), oldest first.
  std::optional<Position> after{};
  int limit = 100;
  int64_t upto_seq = 0;  // only lines of batches up to this seq (0: up to the committed one)
};

struct LogPage {
  std::vector<StoredLine> lines;
  // Where to continue: the last line looked at (matching or not), or — when the read saw
  // everything committed — after the newest committed batch.
  std::optional<Position> next;
};

struct LogOptions {
  size_t buffer_lines = 200000;  // waiting to be written, every tenant together
  size_t buffer_bytes = 64 << 20;
  size_t batch_lines = 2000;              // per transaction
  int64_t retention_ms = 7LL * 86400000;  // per line
  int64_t max_bytes_per_tenant = 1LL << 30;
};

class LogStore {
 public:
  LogStore(store::Store& store, metrics::Registry& registry, LogOptions options);
  ~LogStore();  // Stop()
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  void Start();
  // Writes what is buffered, then stops the writer.
  void Stop();

  // Takes the lines of one instance for writing, never blocking: all of them, or none when
  // they do not fit the buffer (counted as dropped; a sender may send them again). Returns
  // whether they were taken; then `committed` (when given) runs once, on the writer thread,
  // after every one of them is committed (OK) or a write of some failed (Unavailable).
  bool Append(const std::string& tenant, const std::string& environment,
              const std::string& instance, std::vector<LogLine> lines,
              std::function<void(Status)> committed = {});
  // Lines a shipper dropped before sending (its own buffer was full), for the metric.
  void CountDropped(std::string_view reason, uint64_t n);

  // Reads lines; scans at most `kMaxScan` lines for a `q` (then `next` says where to go on).
  Result<LogPage> Read(const LogQuery& q);
  static constexpr int kMaxScan = 50000;

  // Removes lines past the retention and, per tenant over its cap, the oldest until it is at
  // 90 % of it. Run by the leader (idempotent if two run it). `now_ms`: the store's clock.
  Status Prune(int64_t now_ms);

  // Lines waiting in the buffer (tests, metrics).
  size_t buffered() const;
  // Waits until every line appended before the call is committed (or dropped); for tests and
  // shutdown. False if the writer stopped.
  bool Flush(std::chrono::milliseconds timeout);

 private:
  // One Append's lines share it: `committed` runs after the batch of its last line, with the
  // first failure of any of its batches.
  struct Ack {
    std::function<void(Status)> committed;
    Status status;
  };
  struct Pending {
    std::string tenant, environment, instance;
    LogLine line;
    std::shared_ptr<Ack> ack;  // null when nobody waits
    bool last = false;         // the Append's last line
  };
  void WriterLoop();
  Status WriteBatch(std::vector<Pending>& batch);

  store::Store& store_;
  LogOptions o_;
  metrics::Counter& stored_;
  metrics::Family<metrics::Counter>& dropped_;
  metrics::Histogram& batch_seconds_;

  mutable std::mutex mu_;
  std::condition_variable wake_, flushed_;
  std::deque<Pending> pending_;          // GUARDED_BY(mu_)
  size_t pending_bytes_ = 0;             // GUARDED_BY(mu_)
  uint64_t appended_ = 0, written_ = 0;  // GUARDED_BY(mu_): lines taken / committed or lost
  bool stopping_ = false;                // GUARDED_BY(mu_)
  std::thread writer_;
};

}  // namespace drover::logs
