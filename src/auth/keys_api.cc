#include "auth/keys_api.h"

#include <fmt/format.h>

#include "common/json.h"
#include "common/names.h"
#include "http/handler_util.h"

namespace drover::auth {
namespace {

using http::Request;
using http::Responder;
using http::Response;

void AppendKey(std::string& out, const KeyRecord& k) {
  out += "{\"id\":";
  AppendJsonString(out, k.id);
  out += ",\"name\":";
  AppendJsonString(out, k.name);
  out += ",\"role\":";
  AppendJsonString(out, RoleName(k.role));
  out += ",\"tenant\":";
  AppendJsonString(out, k.tenant);
  out += ",\"created_at\":\"" + FormatRfc3339(FromUnixMillis(k.created_at_ms)) + "\"";
  if (!k.instance.empty()) {
    out += ",\"environment\":";
    AppendJsonString(out, k.environment);
    out += ",\"instance\":";
    AppendJsonString(out, k.instance);
  }
  if (k.rate_rps) {
    out += fmt::format(",\"rate_limit\":{{\"rps\":{},\"burst\":{}}}", *k.rate_rps,
                       k.rate_burst.value_or(std::max(1.0, *k.rate_rps)));
  }
  out += '}';
}

Result<KeySpec> DecodeKeySpec(const boost::json::object& body) {
  JsonDecoder d(body);
  KeySpec spec;
  auto name = d.String("name", true);
  auto role = d.String("role", true);
  auto tenant = d.String("tenant", false);
  if (const auto* rl = d.Raw("rate_limit", false)) {
    if (!rl->is_object()) {
      d.AddError("rate_limit", "must be an object {rps, burst}");
    } else {
      JsonDecoder r(rl->as_object(), "rate_limit.");
      auto rps = r.Int("rps", true);
      auto burst = r.Int("burst", false);
      if (Status s = r.Finish(); !s.ok()) {
        for (const auto& e : s.errors()) d.AddError(e.field, e.message);  // keep the full path
      }
      if (rps) spec.rate_rps = static_cast<double>(*rps);
      if (burst) spec.rate_burst = static_cast<double>(*burst);
    }
  }
  if (role) {
    if (auto r = ParseRole(*role)) {
      spec.role = *r;
    } else {
      d.AddError("role", "must be one of admin, user, viewer, agent");
    }
  }
  if (name && !IsValidName(*name)) d.AddError("name", std::string(kNameRule));
  if (tenant && !IsValidName(*tenant)) d.AddError("tenant", std::string(kNameRule));
  if (name) spec.name = *name;
  if (tenant) spec.tenant = *tenant;
  DROVER_RETURN_IF_ERROR(d.Finish());
  return spec;
}

}  // namespace

void AddKeyRoutes(http::Router& router, KeyService& keys) {
  router.Add(http::Method::kPost, "/v1/keys", http::Access::kAny,
             [&keys](Request& req, Responder respond) {
               auto body = http::ReadJsonBody(req);
               if (!body.ok()) return http::SendError(respond, body.status());
               auto spec = DecodeKeySpec(*body);
               if (!spec.ok()) return http::SendError(respond, spec.status());
               keys.Create(req.caller(), std::move(*spec), [respond](Result<NewKey> k) {
                 if (!k.ok()) return http::SendError(respond, k.status());
                 std::string out;
                 AppendKey(out, k->record);
                 out.pop_back();
                 out += ",\"key\":";
                 AppendJsonString(out, k->secret);
                 out += '}';
                 auto r = Response::Json(201, std::move(out));
                 r.AddHeader("Cache-Control", "no-store");
                 respond(std::move(r));
               });
             });

  router.Add(
      http::Method::kGet, "/v1/keys", http::Access::kAny, [&keys](Request& req, Responder respond) {
        auto limit = http::ReadLimit(req, 100, 1000);
        if (!limit.ok()) return http::SendError(respond, limit.status());
        // Like every other list: a non-admin naming another tenant gets 404.
        auto in = http::RequestTenant(req);
        if (!in.ok()) return http::SendError(respond, in.status());
        std::optional<std::string> tenant;
        if (auto t = req.Query("tenant"); t && !t->empty()) tenant = *in;
        auto page = keys.List(req.caller(), tenant, req.Query("cursor").value_or(""), *limit);
        if (!page.ok()) return http::SendError(respond, page.status());
        std::string out = "{\"items\":[";
        for (size_t i = 0; i < page->items.size(); ++i) {
          if (i) out += ',';
          AppendKey(out, page->items[i]);
        }
        out += ']';
        http::AppendNextCursor(out, page->next_cursor);
        out += '}';
        respond(Response::Json(200, std::move(out)));
      });

  router.Add(http::Method::kDelete, "/v1/keys/{id}", http::Access::kAny,
             [&keys](Request& req, Responder respond) {
               keys.Delete(req.caller(), req.Param("id"), http::NoContentOr(respond));
             });
}

}  // namespace drover::auth
