#include "control/variables_api.h"

#include "common/clock.h"
#include "common/json.h"
#include "common/names.h"
#include "http/blocking.h"
#include "http/handler_util.h"

namespace drover::control {
namespace {

using http::Request;
using http::Responder;
using http::Response;

void AppendVariable(std::string& out, const Variable& v) {
  out.reserve(out.size() + 160 + v.key.size() + v.value.size() + v.environment.size());
  out += "{\"key\":";
  AppendJsonString(out, v.key);
  out += ",\"environment\":";
  if (v.environment.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, v.environment);
  }
  out += ",\"value\":";
  AppendJsonString(out, v.value);
  out += ",\"create_index\":" + std::to_string(v.create_index);
  out += ",\"modify_index\":" + std::to_string(v.modify_index);
  out += ",\"updated_at\":\"" + FormatRfc3339(FromUnixMillis(v.updated_at_ms)) + "\"}";
}

Response WithIndex(Response r, int64_t index) {
  r.AddHeader("X-Drover-Index", std::to_string(index));
  return r;
}

// ?environment= as a scope: absent or empty = global; else a valid name.
Result<std::string> EnvironmentParam(const Request& req) {
  auto e = req.Query("environment");
  if (!e || e->empty()) return std::string();
  if (!IsValidName(*e)) {
    return Status::InvalidArgument("query parameter 'environment' " + std::string(kNameRule));
  }
  return *e;
}

// Which variable a GET or DELETE of /v1/variables/{key} names: tenant, key and scope.
struct Address {
  std::string tenant, key, environment;
};

Result<Address> ParseAddress(const Request& req) {
  auto tenant = http::RequestTenant(req);
  if (!tenant.ok()) return tenant.status();
  auto env = EnvironmentParam(req);
  if (!env.ok()) return env.status();
  const std::string& key = req.Param("key");
  if (!IsValidName(key)) return Status::InvalidArgument("variable key " + std::string(kNameRule));
  return Address{std::move(*tenant), key, std::move(*env)};
}

}  // namespace

void AddVariableRoutes(http::Router& router, VariableService& vars, store::Store& store,
                       http::Waiters& waiters) {
  router.Add(http::Method::kPut, "/v1/variables/{key}", http::Access::kAny,
             [&vars, &store](Request& req, Responder respond) {
               auto tenant = http::RequestTenant(req);
               if (!tenant.ok()) return http::SendError(respond, tenant.status());
               auto body = http::ReadJsonBody(req);
               if (!body.ok()) return http::SendError(respond, body.status());
               JsonDecoder d(*body);
               auto value = d.String("value", true);
               auto env = d.String("environment", false);
               if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               // Put validates key, scope and value and answers a Validation status itself.
               vars.Put(std::move(*tenant), req.Param("key"), env.value_or(""), std::move(*value),
                        [respond, &store](Result<PutResult> r) {
                          if (!r.ok()) return http::SendError(respond, r.status());
                          std::string out;
                          AppendVariable(out, r->variable);
                          respond(WithIndex(Response::Json(r->created ? 201 : 200, std::move(out)),
                                            store.LastIndex()));
                        });
             });
  router.MarkQueuesWritesOnly();  // the hot write path: no hop to the store pool

  // Reads run at once or, with ?index=, once a variable change passes that index.
  auto serve = [&waiters](const Request& req, Responder respond, std::function<void()> read) {
    http::ServeRead(waiters, kTopic, req, respond, std::move(read));
  };

  router.Add(http::Method::kGet, "/v1/variables/{key}", http::Access::kAny,
             [&vars, &store, serve](Request& req, Responder respond) {
               auto at = ParseAddress(req);
               if (!at.ok()) return http::SendError(respond, at.status());
               std::string inm(req.Header("If-None-Match"));
               serve(req, respond, [&vars, &store, respond, at = std::move(*at), inm] {
                 int64_t index = store.LastIndex();  // before the read: never newer than it
                 auto v = vars.Get(at.tenant, at.key, at.environment);
                 if (!v.ok()) return respond(WithIndex(Response::Problem(v.status()), index));
                 std::string out;
                 AppendVariable(out, *v);
                 http::RespondWithIndex(respond, inm, Response::Json(200, std::move(out)), index);
               });
             });

  router.Add(http::Method::kGet, "/v1/variables", http::Access::kAny,
             [&vars, &store, serve](Request& req, Responder respond) {
               auto tenant = http::RequestTenant(req);
               if (!tenant.ok()) return http::SendError(respond, tenant.status());
               auto limit = http::ReadLimit(req, 100, 1000);
               if (!limit.ok()) return http::SendError(respond, limit.status());
               ListQuery q;
               q.limit = *limit;
               q.prefix = req.Query("prefix").value_or("");
               q.cursor = req.Query("cursor").value_or("");
               if (req.Query("environment")) {
                 auto env = EnvironmentParam(req);
                 if (!env.ok()) return http::SendError(respond, env.status());
                 q.environment = *env;
               }
               std::string inm(req.Header("If-None-Match"));
               serve(req, respond, [&vars, &store, respond, tenant = std::move(*tenant), q, inm] {
                 int64_t index = store.LastIndex();
                 auto page = vars.List(tenant, q);
                 if (!page.ok()) return http::SendError(respond, page.status());
                 std::string out = "{\"items\":[";
                 for (size_t i = 0; i < page->items.size(); ++i) {
                   if (i) out += ',';
                   AppendVariable(out, page->items[i]);
                 }
                 out += ']';
                 http::AppendNextCursor(out, page->next_cursor);
                 out += ",\"index\":" + std::to_string(index) + "}";
                 http::RespondWithIndex(respond, inm, Response::Json(200, std::move(out)), index);
               });
             });

  router.Add(http::Method::kDelete, "/v1/variables/{key}", http::Access::kAny,
             [&vars, &store](Request& req, Responder respond) {
               auto at = ParseAddress(req);
               if (!at.ok()) return http::SendError(respond, at.status());
               vars.Delete(std::move(at->tenant), std::move(at->key), std::move(at->environment),
                           [respond, &store](Status s) {
                             if (!s.ok()) return http::SendError(respond, s);
                             Response r;
                             r.status = 204;
                             respond(WithIndex(std::move(r), store.LastIndex()));
                           });
             });
  router.MarkQueuesWritesOnly();
}

}  // namespace drover::control
