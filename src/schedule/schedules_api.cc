#include "schedule/schedules_api.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/names.h"
#include "http/handler_util.h"

namespace drover::schedule {
namespace {

using http::Request;
using http::Responder;
using http::Response;

std::string Time(int64_t ms) { return FormatRfc3339(FromUnixMillis(ms)); }

Result<std::pair<std::string, std::string>> Address(const Request& req) {
  auto tenant = http::RequestTenant(req);
  if (!tenant.ok()) return tenant.status();
  const std::string& name = req.Param("name");
  if (!IsValidName(name)) return Status::InvalidArgument("schedule name " + std::string(kNameRule));
  return std::make_pair(std::move(*tenant), name);
}

boost::json::object FiringJson(const Firing& f) {
  return {{"due", Time(f.due_ms)},
          {"fired_at", f.fired_at_ms ? boost::json::value(Time(f.fired_at_ms)) : nullptr},
          {"kind", f.kind},
          {"status", f.status},
          {"result", f.result},
          {"server", f.server}};
}

boost::json::object ScheduleJson(const Schedule& s, int64_t now_ms) {
  boost::json::object status;
  auto created = FromUnixMillis(s.created_at_ms);
  if (s.spec.window) {
    auto w = WindowAt(*s.spec.window, s.spec.zone, FromUnixMillis(now_ms), created);
    status["window_open"] = w.open;
    status["next_change"] =
        w.next_change ? boost::json::value(FormatRfc3339(*w.next_change)) : nullptr;
  } else {
    boost::json::array next;
    TimePoint after = FromUnixMillis(now_ms);
    for (int i = 0; i < 5; ++i) {
      auto t = NextFire(s.spec, after, created);
      if (!t) break;
      next.push_back(boost::json::value(FormatRfc3339(*t)));
      after = *t;
    }
    status["next_fires"] = std::move(next);
  }
  boost::system::error_code ec;
  return {{"name", s.name},
          {"tenant", s.tenant},
          {"spec", boost::json::parse(s.spec_json, ec)},
          {"status", std::move(status)},
          {"create_index", s.create_index},
          {"modify_index", s.modify_index},
          {"created_at", Time(s.created_at_ms)},
          {"updated_at", Time(s.updated_at_ms)}};
}

}  // namespace

void AddScheduleRoutes(http::Router& router, ScheduleService& schedules, Scheduler& scheduler,
                       env::EnvironmentService& envs) {
  router.Add(http::Method::kPut, "/v1/schedules/{name}", http::Access::kAny,
             [&schedules, &envs](Request& req, Responder respond) {
               auto addr = Address(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto doc = http::ReadDocument(req);
               if (!doc.ok()) return http::SendError(respond, doc.status());
               auto spec = ParseScheduleDocument(*doc, addr->second);
               if (!spec.ok()) return http::SendError(respond, spec.status());
               // An environment that does not exist yet is allowed (it may be applied later in
               // the same change): the answer says so.
               boost::json::array warnings;
               const std::string& env =
                   spec->window ? spec->window->environment : spec->action.environment;
               if (!env.empty()) {
                 auto e = envs.Get(addr->first, env);
                 if (!e.ok() && !e.status().IsNotFound()) {
                   return http::SendError(respond, e.status());
                 }
                 if (!e.ok()) {
                   warnings.push_back(boost::json::value(
                       fmt::format("environment '{}' does not exist (yet): the schedule's {} "
                                   "fails until it does",
                                   env, spec->window ? "window" : "action")));
                 }
               }
               schedules.Put(addr->first, addr->second, std::move(*spec),
                             [respond, &schedules, warnings = std::move(warnings)](
                                 Result<std::pair<Schedule, Written>> r) {
                               if (!r.ok()) return http::SendError(respond, r.status());
                               auto body = ScheduleJson(r->first, schedules.NowMillis());
                               if (!warnings.empty()) body["warnings"] = warnings;
                               respond(http::WrittenResponse(r->second, body));
                             });
             });
  router.Add(http::Method::kGet, "/v1/schedules/{name}", http::Access::kAny,
             [&schedules](Request& req, Responder respond) {
               auto addr = Address(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto s = schedules.Get(addr->first, addr->second);
               if (!s.ok()) return http::SendError(respond, s.status());
               auto body = ScheduleJson(*s, schedules.NowMillis());
               auto last = schedules.Firings(addr->first, addr->second, "", 1);
               if (!last.ok()) return http::SendError(respond, last.status());
               body["status"].as_object()["last_firing"] =
                   last->items.empty() ? boost::json::value(nullptr)
                                       : boost::json::value(FiringJson(last->items[0]));
               respond(http::JsonResponse(200, body));
             });
  router.Add(http::Method::kGet, "/v1/schedules", http::Access::kAny,
             [&schedules](Request& req, Responder respond) {
               auto tenant = http::RequestTenant(req);
               if (!tenant.ok()) return http::SendError(respond, tenant.status());
               auto limit = http::ReadLimit(req, 100, 1000);
               if (!limit.ok()) return http::SendError(respond, limit.status());
               auto page =
                   schedules.List(*tenant, std::string(req.Query("cursor").value_or("")), *limit);
               if (!page.ok()) return http::SendError(respond, page.status());
               boost::json::array items;
               int64_t now = schedules.NowMillis();
               for (const auto& s : page->items) items.push_back(ScheduleJson(s, now));
               boost::json::object body{{"items", std::move(items)}};
               http::SetNextCursor(body, page->next_cursor);
               respond(http::JsonResponse(200, body));
             });
  router.Add(http::Method::kDelete, "/v1/schedules/{name}", http::Access::kAny,
             [&schedules](Request& req, Responder respond) {
               auto addr = Address(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               schedules.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });
  router.Add(http::Method::kPost, "/v1/schedules/{name}/trigger", http::Access::kAny,
             [&schedules, &scheduler](Request& req, Responder respond) {
               auto addr = Address(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto s = schedules.Get(addr->first, addr->second);
               if (!s.ok()) return http::SendError(respond, s.status());
               if (s->spec.window) {
                 return http::SendError(
                     respond, Status::InvalidArgument(
                                  "a window has no action to trigger: it holds its capacity "
                                  "while open"));
               }
               scheduler.Trigger(*s, [respond](Result<Firing> f) {
                 if (!f.ok()) return http::SendError(respond, f.status());
                 respond(http::JsonResponse(202, FiringJson(*f)));
               });
             });
  router.Add(http::Method::kGet, "/v1/schedules/{name}/firings", http::Access::kAny,
             [&schedules](Request& req, Responder respond) {
               auto addr = Address(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               if (auto s = schedules.Get(addr->first, addr->second); !s.ok()) {
                 return http::SendError(respond, s.status());
               }
               auto limit = http::ReadLimit(req, 100, 1000);
               if (!limit.ok()) return http::SendError(respond, limit.status());
               auto page = schedules.Firings(addr->first, addr->second,
                                             std::string(req.Query("cursor").value_or("")), *limit);
               if (!page.ok()) return http::SendError(respond, page.status());
               boost::json::array items;
               for (const auto& f : page->items) items.push_back(FiringJson(f));
               boost::json::object body{{"items", std::move(items)}};
               http::SetNextCursor(body, page->next_cursor);
               respond(http::JsonResponse(200, body));
             });
}

}  // namespace drover::schedule
