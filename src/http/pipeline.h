#pragma once
// What happens to every request between the transport and a handler: request id, routing,
// authentication, role checks, rate limiting; and after it: X-Request-Id, metrics and the access
// log. Transport-neutral and thread-safe.
#include <atomic>
#include <string>

#include "auth/keys.h"
#include "auth/rate_limiter.h"
#include "common/clock.h"
#include "http/metrics.h"
#include "http/router.h"

namespace drover::http {

struct PipelineOptions {
  // Default per-key rate limit for non-admin keys without their own; rps 0 = unlimited.
  double default_rps = 0;
  double default_burst = 0;
  bool access_log = true;
};

class Pipeline {
 public:
  Pipeline(const Router& router, Metrics& metrics, auth::KeyService& keys,
           auth::RateLimiter& limiter, const Clock& clock, PipelineOptions options);

  // Routes and authorizes `req`, then runs its handler, which answers through `responder`
  // (possibly later, from another thread). Sets *route to the matched route index (-1 if none).
  // REQUIRES: `req` outlives the response.
  void Dispatch(Request& req, const Responder& responder, int* route);

  // Sets req.request_id: the client's X-Request-Id when it is sane, else a new one. Dispatch
  // does it; the transport calls it for requests it answers itself (malformed, too large).
  void AssignRequestId(Request& req);

  // Completes a response before it is written: X-Request-Id, metrics, access log.
  void Finish(const Request& req, int route, Response& resp, double seconds);

  Metrics& metrics() { return metrics_; }

 private:
  std::string NewRequestId();

  const Router& router_;
  Metrics& metrics_;
  auth::KeyService& keys_;
  auth::RateLimiter& limiter_;
  const Clock& clock_;
  const PipelineOptions options_;
  const std::string id_prefix_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace drover::http
