#include "http/pipeline.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <exception>

#include "common/log.h"
#include "common/random.h"
#include "store/origin.h"

namespace drover::http {
namespace {

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string_view BearerToken(std::string_view auth) {
  if (auth.size() < 7) return {};
  std::string_view scheme = auth.substr(0, 7);
  if (scheme != "Bearer " && scheme != "bearer ") return {};
  auth.remove_prefix(7);
  while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
  while (!auth.empty() && auth.back() == ' ') auth.remove_suffix(1);
  return auth;
}

std::string_view CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return {};
}

Pipeline::Pipeline(const Router& router, Metrics& metrics, Authenticator& keys,
                   http::RateLimiter& limiter, const Clock& clock, PipelineOptions options)
    : router_(router),
      metrics_(metrics),
      keys_(keys),
      limiter_(limiter),
      clock_(clock),
      options_(options),
      id_prefix_(RandomHex(6)) {}

std::string Pipeline::NewRequestId() {
  uint64_t n = next_id_.fetch_add(1, std::memory_order_relaxed);
  char buf[17];
  int len = 0;
  do {
    buf[len++] = "0123456789abcdef"[n & 15];
    n >>= 4;
  } while (n);
  std::string id;
  id.reserve(id_prefix_.size() + 1 + static_cast<size_t>(len));
  id += id_prefix_;
  id += '-';
  while (len) id += buf[--len];
  return id;
}

void Pipeline::AssignRequestId(Request& req) {
  std::string_view given = req.Header("X-Request-Id");
  req.request_id = ValidRequestId(given) ? std::string(given) : NewRequestId();
}

Match Pipeline::Lookup(Request& req) {
  AssignRequestId(req);
  return router_.Find(req.method, req.path);
}

void Pipeline::Dispatch(Request& req, const Responder& respond, int* route_out) {
  Match m = Lookup(req);
  *route_out = m.route;
  Dispatch(req, respond, std::move(m));
}

void Pipeline::Dispatch(Request& req, const Responder& respond, Match m) {
  if (auto refusal = Admit(req, m)) return respond(std::move(*refusal));
  const Route& route = router_.routes()[static_cast<size_t>(m.route)];
  if (!route.handler) {
    return respond(Response::Problem(Status::Internal("a streaming route needs the transport")));
  }
  // Writes the handler starts carry who asked for them into their change records.
  store::ScopedOrigin origin(
      req.principal
          ? store::Origin{req.principal->key_id, RoleName(req.principal->role), req.request_id}
          : store::Origin{"anonymous", "none", req.request_id});
  try {
    route.handler(req, respond);
  } catch (const std::exception& e) {
    LogError("handler for {} {} threw: {} (request {})", MethodName(req.method), route.pattern,
             e.what(), req.request_id);
    respond(Response::Problem(Status::Internal(e.what())));
  }
}

bool Pipeline::RunsFromMemory(Request& req, const Route& route) const {
  if (!route.may_block) return true;
  if (route.reads_store || route.stream || route.access == Access::kPublic) return false;
  req.principal = keys_.Cached(BearerToken(req.Header("Authorization")));
  return req.principal != nullptr;
}

std::optional<Response> Pipeline::Admit(Request& req, Match& m) {
  if (m.kind == Match::kNotFound) {
    return Response::Problem(404, "", fmt::format("no route for {}", req.path));
  }
  if (m.kind == Match::kMethodNotAllowed) {
    auto r = Response::Problem(405, "",
                               fmt::format("{} is not allowed on {}; allowed: {}",
                                           MethodName(req.method), req.path, m.allowed));
    r.AddHeader("Allow", m.allowed);
    return r;
  }
  const Route& route = router_.routes()[static_cast<size_t>(m.route)];
  req.params = std::move(m.params);

  if (route.access != Access::kPublic) {
    // Already known when RunsFromMemory found the key cached: not looked up twice.
    if (!req.principal) {
      std::string_view token = BearerToken(req.Header("Authorization"));
      // The dashboard's cookie only in place of a key, and only with the page's header.
      std::string_view session;
      if (token.empty() && options_.dashboard_session && !req.Header(kDashboardHeader).empty()) {
        session = CookieValue(req.Header("Cookie"), kDashboardCookie);
      }
      bool from_dashboard = !session.empty();
      if (token.empty() && !from_dashboard) {
        auto r = Response::Problem(401, "", "missing API key: send 'Authorization: Bearer <key>'");
        r.AddHeader("WWW-Authenticate", "Bearer");
        return r;
      }
      auto principal = from_dashboard ? options_.dashboard_session(std::string(session))
                                      : keys_.Authenticate(token);
      if (!principal.ok()) {
        auto r = Response::Problem(principal.status());
        if (r.status == 401) r.AddHeader("WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return r;
      }
      req.principal = std::move(*principal);
    }
    const http::Principal& caller = *req.principal;
    const auto role = caller.role;
    bool read = req.method == Method::kGet || req.method == Method::kHead;
    if (role == http::Role::kAgent && route.access != Access::kAgent) {
      return Response::Problem(403, "", "agent keys may only use agent endpoints");
    }
    if (route.access == Access::kAdmin && role != http::Role::kAdmin) {
      return Response::Problem(403, "", "this endpoint needs an admin key");
    }
    if (role == http::Role::kViewer && !read && route.access != Access::kSignIn) {
      return Response::Problem(403, "", "viewer keys are read-only");
    }
    double rps = caller.rate_rps.value_or(role == http::Role::kAdmin ? 0 : options_.default_rps);
    double burst =
        caller.rate_burst.value_or(caller.rate_rps ? std::max(1.0, rps) : options_.default_burst);
    auto d = limiter_.Take(caller.key_id, rps, burst, clock_.Steady());
    if (!d.allowed) {
      auto r = Response::Problem(429, "", "rate limit exceeded for this key");
      r.AddHeader("Retry-After",
                  std::to_string(static_cast<int64_t>(std::ceil(d.retry_after_seconds))));
      return r;
    }
  }

  if (Status s = CheckParameters(req); !s.ok()) return Response::Problem(s);
  return std::nullopt;
}

void Pipeline::Finish(const Request& req, int route, Response& resp, double seconds) {
  resp.AddHeader("X-Request-Id", req.request_id);
  if (options_.on_refused && req.method != Method::kGet && req.method != Method::kHead &&
      req.method != Method::kOptions) {
    int st = resp.status;
    if (st == 401 || st == 403 || st == 404 || st == 409 || st == 422) {
      options_.on_refused(req, route >= 0 ? &router_.routes()[static_cast<size_t>(route)] : nullptr,
                          resp);
    }
  }
  metrics_.ObserveRequest(route, resp.status, seconds);
  if (!resp.log_detail.empty() || resp.status == 500) {
    Log(resp.status >= 500 ? LogLevel::kError : LogLevel::kWarn, "request failed",
        {{"method", MethodName(req.method)},
         {"path", req.path},
         {"status", std::to_string(resp.status)},
         {"request_id", req.request_id},
         {"detail", resp.log_detail}});
  }
  if (options_.access_log && LogEnabled(LogLevel::kInfo)) {
    char status[8], bytes[24], ms[32];
    auto n1 = static_cast<size_t>(std::to_chars(status, status + sizeof status, resp.status).ptr -
                                  status);
    auto n2 = static_cast<size_t>(std::to_chars(bytes, bytes + sizeof bytes, resp.body.size()).ptr -
                                  bytes);
    // Milliseconds with three decimals, from integer microseconds (no float formatting).
    auto us = static_cast<int64_t>(seconds * 1e6);
    char* p = std::to_chars(ms, ms + sizeof ms - 4, us / 1000).ptr;
    *p++ = '.';
    int frac = static_cast<int>(us % 1000);
    *p++ = static_cast<char>('0' + frac / 100);
    *p++ = static_cast<char>('0' + frac / 10 % 10);
    *p++ = static_cast<char>('0' + frac % 10);
    auto n3 = static_cast<size_t>(p - ms);
    std::string_view trace = req.TraceId();
    const LogField fields[] = {{"method", MethodName(req.method)},
                               {"path", req.path},
                               {"status", {status, n1}},
                               {"bytes", {bytes, n2}},
                               {"ms", {ms, n3}},
                               {"key", req.caller().key_id},
                               {"request_id", req.request_id},
                               {"trace_id", trace}};
    // trace_id only when the request has a trace (given, or started by its handler).
    Log(LogLevel::kInfo, "request",
        std::span<const LogField>(fields, std::size(fields) - (trace.empty() ? 1 : 0)));
  }
}

}  // namespace drover::http
