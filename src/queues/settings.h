#pragma once
// A queue's settings as users write them (docs/queues.md), their limits and checks.
#include <boost/json/fwd.hpp>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace drover::queues {

struct QueueSettings {
  bool fifo = false;
  int64_t visibility_ms = 30'000;
  int64_t max_receives = 0;  // 0: no limit
  std::string dead_letter_queue;
  int64_t retention_ms = 4LL * 24 * 3600'000;
  int64_t delay_ms = 0;
  int64_t max_message_bytes = 256 * 1024;

  bool operator==(const QueueSettings&) const = default;
};

inline constexpr int64_t kMaxVisibilityMs = 12LL * 3600'000;
inline constexpr int64_t kMaxDelayMs = 7LL * 24 * 3600'000;
inline constexpr int64_t kMinRetentionMs = 60'000;
inline constexpr int64_t kMaxRetentionMs = 14LL * 24 * 3600'000;
inline constexpr int64_t kMaxMessageBytes = 1024 * 1024;
inline constexpr int64_t kMaxReceivesLimit = 1000;

// A Queue document (`{kind: Queue, name, spec: {...}}`) or a bare spec: the settings, or a
// Validation status naming each bad field. `name` is the queue's (from the path).
Result<QueueSettings> ParseQueueDocument(const boost::json::value& doc, std::string_view name);

// The settings as the API shows them (durations as "30s").
boost::json::object SettingsJson(const QueueSettings& s);

}  // namespace drover::queues
