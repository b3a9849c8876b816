#include "http/rate_limiter.h"

#include <algorithm>
#include <functional>

namespace drover::http {

RateLimiter::Decision RateLimiter::Take(const std::string& key, double rps, double burst,
                                        std::chrono::steady_clock::time_point now) {
  if (rps <= 0) return {};
  burst = std::max(burst, 1.0);
  auto& shard = shards_[std::hash<std::string>{}(key) % shards_.size()];
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.buckets.try_emplace(key, Bucket{burst, now});
  Bucket& b = it->second;
  if (!inserted) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst, b.tokens + std::max(0.0, elapsed) * rps);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {};
  }
  return {false, (1.0 - b.tokens) / rps};
}

}  // namespace drover::http
