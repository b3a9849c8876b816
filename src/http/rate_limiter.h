#pragma once
// Per-key token buckets. A bucket holds up to `burst` tokens and refills at `rps` per second; a
// request takes one. Thread-safe (sharded locks).
#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace drover::http {

class RateLimiter {
 public:
  struct Decision {
    bool allowed = true;
    double retry_after_seconds = 0;  // when not allowed: until one token is back
  };
  // Takes a token from `key`'s bucket. rps <= 0 means unlimited.
  Decision Take(const std::string& key, double rps, double burst,
                std::chrono::steady_clock::time_point now);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
  };
  std::array<Shard, 16> shards_;
};

}  // namespace drover::http
