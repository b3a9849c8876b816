#include "ui/ui_routes.h"

#include "http/blocking.h"
#include "ui/assets.h"

namespace drover::ui {
namespace {

using http::Access;
using http::Method;
using http::Request;
using http::Response;

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

}  // namespace

void AddUiRoutes(http::Router& router) {
  router.Add(Method::kGet, "/ui/{*rest}", Access::kPublic,
             [](Request& req, http::Responder respond) {
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
