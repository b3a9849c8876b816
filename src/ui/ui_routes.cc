#include "ui/ui_routes.h"

#include <fmt/format.h>

#include "common/json.h"
#include "gateway/sessions.h"
#include "http/blocking.h"
#include "http/handler_util.h"
#include "http/pipeline.h"
#include "ui/assets.h"

namespace drover::ui {
namespace {

using http::Access;
using http::Method;
using http::Request;
using http::Response;
namespace json = boost::json;

const Asset* Find(std::string_view path) {
  for (const auto& a : Assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

// Whether the client takes gzip: named in Accept-Encoding and not refused with "q=0" (a
// browser always takes it; a careful client may refuse it).
bool AcceptsGzip(std::string_view accept_encoding) {
  size_t at = accept_encoding.find("gzip");
  if (at == std::string_view::npos) return false;
  std::string_view params = accept_encoding.substr(at + 4);
  params = params.substr(0, params.find(','));
  size_t q = params.find("q=");
  if (q == std::string_view::npos) return true;
  std::string_view v = params.substr(q + 2);
  v = v.substr(0, v.find_first_of(" ;"));
  return v.find_first_not_of("0.") != std::string_view::npos;  // "0", "0.0": refused
}

Response Serve(const Request& req, const Asset& a) {
  Response r;
  r.AddHeader("Cache-Control", a.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  r.AddHeader("ETag", a.etag);
  r.AddHeader("X-Content-Type-Options", "nosniff");
  if (a.path == "index.html") {
    r.AddHeader("Content-Security-Policy",
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    r.AddHeader("X-Frame-Options", "DENY");
    r.AddHeader("Referrer-Policy", "no-referrer");
  }
  if (!a.gzip.empty()) r.AddHeader("Vary", "Accept-Encoding");
  if (http::EtagMatches(req.Header("If-None-Match"), a.etag)) {
    r.status = 304;
    return r;
  }
  r.content_type = a.content_type;
  if (!a.gzip.empty() && AcceptsGzip(req.Header("Accept-Encoding"))) {
    r.AddHeader("Content-Encoding", "gzip");
    r.body = std::string(a.gzip);
  } else {
    r.body = std::string(a.body);
  }
  return r;
}

bool Https(const Request& req) { return req.Header("X-Forwarded-Proto") == "https"; }

// The dashboard session's cookie: only ever sent to the API (never to /env/ or /svc/ services),
// never readable by a script; Secure when the request came over HTTPS through a proxy that
// says so (X-Forwarded-Proto; the server itself speaks plain HTTP).
std::string SessionCookie(bool https, std::string_view token, std::chrono::seconds max_age) {
  return fmt::format("{}={}; Path=/v1/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                     http::kDashboardCookie, token, max_age.count(), https ? "; Secure" : "");
}

// GET /ui/...?drover_code=CODE: the code traded for a session, then 303 to the same page
// without the code (it stays in no history).
void Redeem(gateway::SessionService& sessions, const Request& req, std::string code,
            http::Responder respond) {
  std::string_view rest = req.Param("rest");
  std::string location = "/ui" + std::string(rest.empty() ? "/" : rest);
  bool https = Https(req);
  sessions.Redeem(std::move(code), std::string(gateway::kDashboardScope),
                  [respond, location, https](Result<std::string> token) {
                    if (!token.ok()) return respond(Response::Problem(token.status()));
                    Response r;
                    r.status = 303;
                    r.content_type = "";
                    r.AddHeader("Location", location);
                    r.AddHeader("Set-Cookie",
                                SessionCookie(https, *token, gateway::kSessionLifetime));
                    r.AddHeader("Cache-Control", "no-store");
                    respond(std::move(r));
                  });
}

void AddSessionRoutes(http::Router& router, gateway::SessionService& sessions) {
  router.Add(Method::kPost, "/v1/ui/open", Access::kSignIn,
             [&sessions](Request& req, http::Responder respond) {
               const http::Principal& caller = req.caller();
               sessions.Open(
                   caller, caller.tenant, std::string(gateway::kDashboardScope),
                   [respond](Result<gateway::SessionService::Code> c) {
                     if (!c.ok()) return http::SendError(respond, c.status());
                     json::object body{
                         {"url", fmt::format("/ui/?{}={}", gateway::kCodeParameter, c->code)},
                         {"expires_at", JsonTime(c->expires_at_ms)}};
                     respond(http::JsonResponse(201, body));
                   });
             });
  // Public, so that a page without a session learns it without a 401 (which a browser reports
  // as an error): whether this browser's cookie is a live session.
  router.Add(
      Method::kGet, "/v1/ui/session", Access::kPublic,
      [&sessions](Request& req, http::Responder respond) {
        std::string_view token = http::CookieValue(req.Header("Cookie"), http::kDashboardCookie);
        bool active = false;
        if (!token.empty() && !req.Header(http::kDashboardHeader).empty()) {
          auto found = sessions.Check(std::string(token), std::string(gateway::kDashboardScope));
          if (!found.ok() && found.status().code() != Status::Code::kUnauthenticated) {
            return http::SendError(respond, found.status());
          }
          active = found.ok();
        }
        respond(http::JsonResponse(200, json::object{{"active", active}}));
      });
  router.MarkMayBlock();  // a session is checked in the store
  // Public: a session that has already ended must still be able to clear its cookie.
  router.Add(Method::kDelete, "/v1/ui/session", Access::kPublic,
             [&sessions](Request& req, http::Responder respond) {
               if (req.Header(http::kDashboardHeader).empty()) {
                 return respond(Response::Problem(
                     403, "", fmt::format("send the {} header", http::kDashboardHeader)));
               }
               auto done = [respond, https = Https(req)](Status s) {
                 if (!s.ok()) return http::SendError(respond, s);
                 Response r;
                 r.status = 204;
                 r.content_type = "";
                 r.AddHeader("Set-Cookie", SessionCookie(https, "", std::chrono::seconds(0)));
                 respond(std::move(r));
               };
               std::string token(http::CookieValue(req.Header("Cookie"), http::kDashboardCookie));
               std::string scope(gateway::kDashboardScope);
               // Anyone may call this with any cookie: only a live session costs a write.
               if (token.empty() || !sessions.Check(token, scope).ok()) return done(Status::Ok());
               sessions.End(token, scope, std::move(done));
             });
  router.MarkMayBlock();  // the session is checked in the store
}

}  // namespace

void AddUiRoutes(http::Router& router, gateway::SessionService* sessions) {
  if (sessions) AddSessionRoutes(router, *sessions);
  router.Add(Method::kGet, "/ui/{*rest}", Access::kPublic,
             [sessions](Request& req, http::Responder respond) {
               if (auto code = req.Query(gateway::kCodeParameter); code && sessions) {
                 return Redeem(*sessions, req, std::string(*code), std::move(respond));
               }
               std::string_view rest = req.Param("rest");  // "/app.js"; "" or "/" for the page
               if (rest.starts_with('/')) rest.remove_prefix(1);
               if (rest.empty()) rest = "index.html";
               const Asset* a = Find(rest);
               // A page route (/ui/environments/web): the page, which routes itself.
               std::string_view last = rest.substr(rest.rfind('/') + 1);
               if (!a && last.find('.') == std::string_view::npos) a = Find("index.html");
               if (!a) {
                 return respond(Response::Problem(404, "Not Found", "no such dashboard file"));
               }
               respond(Serve(req, *a));
             });
}

}  // namespace drover::ui
