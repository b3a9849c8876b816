#include "gateway/routes_api.h"

#include <boost/json.hpp>

#include "common/clock.h"
#include "common/json.h"
#include "events/spec_rows.h"
#include "http/handler_util.h"

namespace drover::gateway {
namespace {

namespace json = boost::json;
using http::Request;
using http::Responder;

// A route with, when this server has it loaded, its upstreams' health as this server sees it.
json::object RouteJson(RouteService& routes, const Route& r) {
  json::object o = events::SpecRowJson(r);
  auto live = routes.Find(r.name);
  if (live && live->route.tenant == r.tenant && live->spec.environment.empty()) {
    json::array ups;
    for (const auto& v : live->upstreams->Snapshot(std::chrono::steady_clock::now())) {
      ups.push_back(json::object{{"url", v.url},
                                 {"ready", v.ready},
                                 {"ejected", v.ejected},
                                 {"in_flight", v.in_flight},
                                 {"ejections", v.ejections_total}});
    }
    o["status"] = json::object{{"upstreams", std::move(ups)}};
  }
  return o;
}

}  // namespace

void AddRouteRoutes(http::Router& router, RouteService& routes, SessionService& sessions,
                    env::Services& envs) {
  using http::Access;
  using http::Method;
  router.Add(Method::kPut, "/v1/routes/{name}", Access::kAny,
             [&routes](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "route");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto doc = http::ReadDocument(req);
               if (!doc.ok()) return http::SendError(respond, doc.status());
               auto spec = ParseRouteDocument(*doc, addr->second);
               if (!spec.ok()) return http::SendError(respond, spec.status());
               const auto& top = doc->as_object();
               const json::value* s = top.if_contains("spec");
               std::string text = ToJson(s ? *s : *doc);
               routes.Put(addr->first, addr->second, std::move(text),
                          [&routes, respond](Result<std::pair<Route, Written>> r) {
                            if (!r.ok()) return http::SendError(respond, r.status());
                            respond(http::WrittenResponse(r->second, RouteJson(routes, r->first)));
                          });
             });
  router.Add(Method::kGet, "/v1/routes/{name}", Access::kAny,
             [&routes](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "route");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto r = routes.Get(addr->first, addr->second);
               if (!r.ok()) return http::SendError(respond, r.status());
               respond(http::JsonResponse(200, RouteJson(routes, *r)));
             });
  router.Add(Method::kGet, "/v1/routes", Access::kAny, [&routes](Request& req, Responder respond) {
    http::RespondList(req, respond, routes,
                      [&routes](const Route& r) { return RouteJson(routes, r); });
  });
  router.Add(
      Method::kPost, "/v1/environments/{name}/open", Access::kAny,
      [&sessions, &envs](Request& req, Responder respond) {
        auto addr = http::TenantAndName(req, "environment");
        if (!addr.ok()) return http::SendError(respond, addr.status());
        auto e = envs.environments.Get(addr->first, addr->second);
        if (!e.ok()) return http::SendError(respond, e.status());
        if (!e->spec.service) {
          return http::SendError(
              respond,
              Status::Validation({{"spec.service", "the environment has no service to open"}}));
        }
        if (req.caller().tenant != addr->first) {
          // An admin acting in another tenant: the session would be for its own.
          return http::SendError(respond,
                                 Status::InvalidArgument("open environments of your own tenant"));
        }
        std::string name = addr->second;
        sessions.Open(
            req.caller(), addr->first, name, [respond, name](Result<SessionService::Code> c) {
              if (!c.ok()) return http::SendError(respond, c.status());
              json::object body{
                  {"url", "/env/" + name + "/?" + std::string(kCodeParameter) + "=" + c->code},
                  {"expires_at", JsonTime(c->expires_at_ms)}};
              respond(http::JsonResponse(201, body));
            });
      });
  router.Add(Method::kDelete, "/v1/routes/{name}", Access::kAny,
             [&routes](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "route");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               routes.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });
}

}  // namespace drover::gateway
