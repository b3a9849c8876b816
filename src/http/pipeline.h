#pragma once
// What happens to every request between the transport and a handler: request id, routing,
// authentication, role checks, rate limiting; and after it: X-Request-Id, metrics and the access
// log. Transport-neutral and thread-safe.
#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"
#include "http/metrics.h"
#include "http/principal.h"
#include "http/rate_limiter.h"
#include "http/router.h"

namespace drover::http {

struct PipelineOptions {
  // Default per-key rate limit for non-admin keys without their own; rps 0 = unlimited.
  double default_rps = 0;
  double default_burst = 0;
  bool access_log = true;
  // Called for a mutating call (not GET/HEAD/OPTIONS) refused with 401, 403, 404, 409 or 422:
  // the audit log records it. `route` is null when no route matched.
  std::function<void(const Request&, const Route* route, const Response&)> on_refused;
  // The caller behind a dashboard session cookie (docs/dashboard.md); unset: no sessions.
  std::function<Result<std::shared_ptr<const Principal>>(const std::string& token)>
      dashboard_session;
};

// The dashboard's session: a cookie taken in place of a key only on a request that also
// carries kDashboardHeader. A cross-site form cannot send a header, and a cross-site script
// may not without a CORS preflight this server never grants: the cookie alone opens nothing.
inline constexpr std::string_view kDashboardCookie = "drover_ui";
inline constexpr std::string_view kDashboardHeader = "X-Drover-UI";

// The token of an `Authorization: Bearer TOKEN` header value; empty when there is none.
std::string_view BearerToken(std::string_view authorization);
// A cookie's value from a Cookie header ("a=1; b=2"); empty when absent.
std::string_view CookieValue(std::string_view cookie_header, std::string_view name);

class Pipeline {
 public:
  Pipeline(const Router& router, Metrics& metrics, Authenticator& keys, http::RateLimiter& limiter,
           const Clock& clock, PipelineOptions options);

  // Routes and authorizes `req`, then runs its handler, which answers through `responder`
  // (possibly later, from another thread). Sets *route to the matched route index (-1 if none).
  // REQUIRES: `req` outlives the response.
  void Dispatch(Request& req, const Responder& responder, int* route);

  // The same in steps, for the transport, which needs the route before it reads a body:
  // Lookup assigns the request id and finds the route (the body may still be unread);
  // Admit answers 404/405, authenticates, checks the role, the rate limit and the parameters,
  // and returns the refusal, or nullopt to go on; Dispatch(req, responder, match) is both plus
  // the handler.
  Match Lookup(Request& req);
  std::optional<Response> Admit(Request& req, Match& match);
  void Dispatch(Request& req, const Responder& responder, Match match);
  // Whether `req` on `route` cannot wait on the store: a route that may block only through its
  // key check (its handler reads nothing: Route::reads_store) with a key verified and cached,
  // whose caller it then sets (Admit does not look the key up again). The transport runs such
  // a request inline instead of on the store pool.
  bool RunsFromMemory(Request& req, const Route& route) const;
  const Route* RouteOf(const Match& match) const {
    return match.kind == Match::kFound ? &router_.routes()[static_cast<size_t>(match.route)]
                                       : nullptr;
  }

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
  Authenticator& keys_;
  http::RateLimiter& limiter_;
  const Clock& clock_;
  const PipelineOptions options_;
  const std::string id_prefix_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace drover::http
