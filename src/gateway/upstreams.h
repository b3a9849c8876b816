#pragma once
// The upstreams of one route and what the gateway knows of their health: which one takes the
// next request (round robin, least requests in flight, or a hash for sticky sessions), and
// passive outlier ejection — an upstream that fails `eject_after` times in a row gets no
// traffic for a while, longer each time it fails again, but the last one standing is never
// ejected. Pure logic over a steady clock passed in; thread-safe.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/route_spec.h"

namespace drover::gateway {

using SteadyTime = std::chrono::steady_clock::time_point;

struct Upstream {
  UpstreamUrl url;
  // Guarded by the set's mutex.
  bool ready = true;  // active health (an environment's health path); static ones stay ready
  int64_t in_flight = 0;
  int64_t consecutive_failures = 0;
  int64_t times_ejected = 0;  // in a row, without a success since
  SteadyTime ejected_until{};
  uint64_t ejections_total = 0;
};

struct EjectionPolicy {
  int64_t after = 5;
  std::chrono::milliseconds base{30000};
};

class UpstreamSet {
 public:
  // Replaces the members; those that stay (same URL) keep their health. New ones start
  // `ready` (static upstreams) or not (an environment's, until a health check passes).
  void Set(const std::vector<UpstreamUrl>& urls, bool ready = true);
  // Active health of the member with this URL text.
  void SetReady(const std::string& url, bool ready);
  // The member for the next request, skipping `tried` when another is available; null when
  // there is no member that is ready. Counts it in flight until Done.
  std::shared_ptr<Upstream> Pick(Balance balance, std::string_view hash_key,
                                 const std::vector<const Upstream*>& tried, SteadyTime now);
  // The outcome of a request to `u` (picked from this set): a failure counts toward ejection.
  // True when this failure ejected it.
  bool Done(const std::shared_ptr<Upstream>& u, bool ok, const EjectionPolicy& policy,
            SteadyTime now);

  struct View {
    std::string url;
    bool ready = false, ejected = false;
    int64_t in_flight = 0;
    uint64_t ejections_total = 0;
  };
  std::vector<View> Snapshot(SteadyTime now) const;
  size_t size() const;

 private:
  bool Eligible(const Upstream& u, SteadyTime now) const {
    return u.ready && now >= u.ejected_until;
  }
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Upstream>> members_;  // GUARDED_BY(mu_)
  uint64_t next_ = 0;                               // GUARDED_BY(mu_): round robin
};

// FNV-1a, 64 bits: the same on every server (sticky sessions survive a change of server).
uint64_t StableHash(std::string_view a, std::string_view b);

}  // namespace drover::gateway
