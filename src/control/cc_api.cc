#include "control/cc_api.h"

#include "common/json.h"
#include "common/names.h"
#include "http/handler_util.h"

namespace drover::control {

bool IsHeaderSafe(std::string_view v) {
  if (v.size() > 8192) return false;
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  // Leading or trailing whitespace would be trimmed by the receiver: not the same value.
  return v.empty() ||
         (v.front() != ' ' && v.front() != '\t' && v.back() != ' ' && v.back() != '\t');
}

namespace {

void AddView(http::Router& router, std::string pattern, std::string prefix, VariableService& vars,
             store::Store& store, http::Waiters& waiters) {
  router.Add(
      http::Method::kGet, pattern, http::Access::kAgent,
      [&vars, &store, &waiters, prefix](http::Request& req, http::Responder respond) {
        auto tenant = http::RequestTenant(req);
        if (!tenant.ok()) return http::SendError(respond, tenant.status());
        std::string env(req.Query("environment").value_or(""));
        if (!env.empty() && !IsValidName(env)) {
          return http::SendError(respond, Status::InvalidArgument("query parameter 'environment' " +
                                                                  std::string(kNameRule)));
        }
        std::string inm(req.Header("If-None-Match"));
        http::ServeRead(waiters, kTopic, req, respond,
                        [&vars, &store, respond, tenant = std::move(*tenant), env, prefix, inm] {
                          int64_t index = store.LastIndex();
                          auto set = vars.Effective(tenant, env, prefix);
                          if (!set.ok()) return http::SendError(respond, set.status());
                          std::string body = "{";
                          for (const auto& [k, v] : *set) {
                            if (body.size() > 1) body += ',';
                            AppendJsonString(body, k);
                            body += ':';
                            AppendJsonString(body, v);
                          }
                          body += '}';
                          auto r = http::Response::Json(200, std::move(body));
                          for (const auto& [k, v] : *set) {
                            if (IsHeaderSafe(v)) r.AddHeader(k, v);
                          }
                          http::RespondWithIndex(respond, inm, std::move(r), index);
                        });
      });
}

}  // namespace

void AddControlCenterRoutes(http::Router& router, VariableService& vars, store::Store& store,
                            http::Waiters& waiters) {
  AddView(router, "/v1/cc/agent", "cc-a-", vars, store, waiters);
  AddView(router, "/v1/cc/watcher", "cc-w-", vars, store, waiters);
}

}  // namespace drover::control
