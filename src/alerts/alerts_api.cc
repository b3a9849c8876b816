#include "alerts/alerts_api.h"

#include <boost/json.hpp>

#include "alerts/rule_spec.h"
#include "common/json.h"
#include "events/spec_rows.h"
#include "http/handler_util.h"

namespace drover::alerts {
namespace {

namespace json = boost::json;
using http::Request;
using http::Responder;

json::object RuleJson(const AlertRule& r) { return events::SpecRowJson(r); }

}  // namespace

void AddAlertRoutes(http::Router& router, AlertService& alerts) {
  using http::Access;
  using http::Method;
  router.Add(Method::kPut, "/v1/alerts/{name}", Access::kAny,
             [&alerts](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto doc = http::ReadDocument(req);
               if (!doc.ok()) return http::SendError(respond, doc.status());
               auto spec = ParseRuleDocument(*doc, addr->second);
               if (!spec.ok()) return http::SendError(respond, spec.status());
               const json::value* s = doc->as_object().if_contains("spec");
               std::string text = ToJson(s ? *s : *doc);
               alerts.Put(addr->first, addr->second, std::move(text),
                          [respond](Result<std::pair<AlertRule, Written>> r) {
                            if (!r.ok()) return http::SendError(respond, r.status());
                            respond(http::WrittenResponse(r->second, RuleJson(r->first)));
                          });
             });
  router.Add(Method::kGet, "/v1/alerts/{name}", Access::kAny,
             [&alerts](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto r = alerts.Get(addr->first, addr->second);
               if (!r.ok()) return http::SendError(respond, r.status());
               respond(http::JsonResponse(200, RuleJson(*r)));
             });
  router.Add(Method::kGet, "/v1/alerts", Access::kAny, [&alerts](Request& req, Responder respond) {
    http::RespondList(req, respond, alerts, [](const AlertRule& r) { return RuleJson(r); });
  });
  router.Add(Method::kDelete, "/v1/alerts/{name}", Access::kAny,
             [&alerts](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               alerts.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });
}

}  // namespace drover::alerts
