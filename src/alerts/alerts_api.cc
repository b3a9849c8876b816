#include "alerts/alerts_api.h"

#include <boost/json.hpp>

#include "alerts/rule_spec.h"
#include "common/clock.h"
#include "common/json.h"
#include "events/spec_rows.h"
#include "http/handler_util.h"

namespace drover::alerts {
namespace {

namespace json = boost::json;
using http::Request;
using http::Responder;

json::object RuleJson(const AlertRule& r) { return events::SpecRowJson(r); }

json::object SilenceJson(const Silence& s) {
  return json::object{{"until", JsonTime(s.until_ms)},
                      {"comment", s.comment},
                      {"created_by", s.created_by},
                      {"created_at", JsonTime(s.created_at_ms)}};
}

// The rule with its pending and firing alerts, as stored by the leader, and its silence.
Result<json::object> RuleWithStatus(AlertRunner& runner, const AlertRule& r) {
  auto active = runner.Active(r.tenant, r.name);
  if (!active.ok()) return active.status();
  json::array alerts;
  for (const auto& a : *active) {
    alerts.push_back(json::object{{"labels", JsonStrings(a.labels)},
                                  {"state", a.phase},
                                  {"value", a.value},
                                  {"active_since", JsonTime(a.active_since_ms)},
                                  {"fired_at", JsonTime(a.fired_at_ms)},
                                  {"updated_at", JsonTime(a.updated_at_ms)}});
  }
  auto silence = runner.SilenceOf(r.tenant, r.name);
  if (!silence.ok()) return silence.status();
  json::object o = RuleJson(r);
  o["status"] = json::object{{"alerts", std::move(alerts)},
                             {"silence", *silence ? SilenceJson(**silence) : json::value(nullptr)}};
  return o;
}

}  // namespace

void AddAlertRoutes(http::Router& router, AlertService& alerts, AlertRunner& runner) {
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
             [&alerts, &runner](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto r = alerts.Get(addr->first, addr->second);
               if (!r.ok()) return http::SendError(respond, r.status());
               auto body = RuleWithStatus(runner, *r);
               if (!body.ok()) return http::SendError(respond, body.status());
               respond(http::JsonResponse(200, *body));
             });
  router.Add(Method::kGet, "/v1/alerts/{name}/history", Access::kAny,
             [&runner](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto limit = http::ReadLimit(req, 100, 1000);
               if (!limit.ok()) return http::SendError(respond, limit.status());
               // The history of a deleted rule stays readable until the cleanup; a name that
               // never was gives an empty page.
               auto page = runner.History(addr->first, addr->second,
                                          req.Query("cursor").value_or(""), *limit);
               if (!page.ok()) return http::SendError(respond, page.status());
               json::array items;
               for (const auto& h : page->items) {
                 items.push_back(json::object{{"seq", h.seq},
                                              {"at", JsonTime(h.at_ms)},
                                              {"labels", JsonStrings(h.labels)},
                                              {"transition", h.transition},
                                              {"value", h.value},
                                              {"annotations", JsonStrings(h.annotations)}});
               }
               json::object body{
                   {"items", std::move(items)},
                   {"next_cursor", page->next_cursor.empty() ? json::value(nullptr)
                                                             : json::value(page->next_cursor)}};
               respond(http::JsonResponse(200, body));
             });
  // The dashboard's charts of the server's own metrics (alerts/history.h).
  router.Add(
      Method::kGet, "/v1/metrics/history", Access::kAny,
      [&runner](Request& req, Responder respond) {
        auto tenant = http::RequestTenant(req);
        if (!tenant.ok()) return http::SendError(respond, tenant.status());
        auto since = http::ReadRangeStart(req);
        if (!since.ok()) return http::SendError(respond, since.status());
        std::string name = req.Query("name").value_or("");
        if (name.size() > 64) {
          return http::SendError(respond,
                                 Status::InvalidArgument("query parameter 'name' is too long"));
        }
        constexpr int64_t kMaxPoints = 100000;
        auto points = runner.MetricHistory(*tenant, *since, name, kMaxPoints + 1);
        if (!points.ok()) return http::SendError(respond, points.status());
        bool truncated = static_cast<int64_t>(points->size()) > kMaxPoints;
        if (truncated) points->pop_back();
        json::array series;
        const MetricPoint* prev = nullptr;
        for (const auto& p : *points) {
          if (!prev || prev->name != p.name || prev->labels != p.labels) {
            series.push_back(json::object{{"name", p.name},
                                          {"labels", ParseJsonOrNull(p.labels)},
                                          {"points", json::array()}});
          }
          series.back().as_object()["points"].as_array().push_back(
              json::object{{"at", JsonTime(p.at_ms)}, {"value", p.value}});
          prev = &p;
        }
        json::object body{
            {"step_seconds",
             std::chrono::duration_cast<std::chrono::seconds>(runner.history_step()).count()},
            {"series", std::move(series)},
            {"truncated", truncated}};
        respond(http::JsonResponse(200, body));
      });
  router.Add(Method::kGet, "/v1/alerts", Access::kAny, [&alerts](Request& req, Responder respond) {
    http::RespondList(req, respond, alerts, [](const AlertRule& r) { return RuleJson(r); });
  });
  router.Add(Method::kPost, "/v1/alerts/{name}/silence", Access::kAny,
             [&runner](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto body = http::ReadJsonBody(req);
               if (!body.ok()) return http::SendError(respond, body.status());
               JsonDecoder d(*body);
               int64_t for_ms = 3600 * 1000;
               ReadDurationField(d, "for", 1000, 90LL * 24 * 3600 * 1000, &for_ms);
               std::string comment = d.String("comment", false).value_or("");
               if (comment.size() > 1024) d.AddError("comment", "must be at most 1024 bytes");
               if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               runner.Silence(addr->first, addr->second, for_ms, std::move(comment),
                              req.caller().key_id, [respond](Result<Silence> r) {
                                if (!r.ok()) return http::SendError(respond, r.status());
                                respond(http::JsonResponse(200, SilenceJson(*r)));
                              });
             });
  router.Add(Method::kDelete, "/v1/alerts/{name}/silence", Access::kAny,
             [&runner](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               runner.Unsilence(addr->first, addr->second, http::NoContentOr(respond));
             });
  router.Add(Method::kDelete, "/v1/alerts/{name}", Access::kAny,
             [&alerts](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "alert");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               alerts.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });
}

}  // namespace drover::alerts
