#pragma once
// The gateway's proxy (docs/gateway.md): `/svc/{route}/...` to a route's upstreams and
// `/env/{environment}/...` to the caller's own environment service, woken from zero when it
// was closed for being idle. Request and response bodies stream both ways in bounded pieces;
// WebSocket upgrades pass through; upstream connections are kept alive per I/O thread.
#include <memory>

#include "env/services.h"
#include "gateway/routes.h"
#include "gateway/sessions.h"
#include "http/principal.h"
#include "http/router.h"
#include "metrics/registry.h"

namespace drover::gateway {

class Proxy {
 public:
  // `envs` may be null (no environment proxy: /env/ answers 404); `sessions` too (no browser
  // sessions).
  Proxy(RouteService& routes, http::Authenticator& keys, env::Services* envs,
        SessionService* sessions, store::Store& store, metrics::Registry& metrics);
  ~Proxy();
  // Adds /svc/{route}/{*rest} and /env/{environment}/{*rest} for every method.
  void AddRoutes(http::Router& router);
  // Starts and stops the active health checks of environment upstreams.
  void Start();
  void Stop();

  struct Impl;  // public only for proxy.cc's coroutines

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace drover::gateway
