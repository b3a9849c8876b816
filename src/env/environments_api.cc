#include "env/environments_api.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"
#include "common/yaml.h"
#include "control/values.h"
#include "http/handler_util.h"

namespace drover::env {
namespace {

using http::Request;
using http::Responder;
using http::Response;

std::string Time(int64_t ms) { return FormatRfc3339(FromUnixMillis(ms)); }

boost::json::value ParseOr(std::string_view json, boost::json::value fallback) {
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  return ec ? fallback : v;
}

boost::json::object InstanceJson(const Instance& i) {
  boost::json::object o{
      {"id", i.id},
      {"environment", i.environment},
      {"state", Name(i.state)},
      {"hostname", i.hostname},
      {"address", i.address},
      {"provider_id", i.provider_id},
      {"agent_version", i.agent_version},
      {"facts", ParseOr(i.facts_json, boost::json::object())},
      {"last_heartbeat", i.last_heartbeat_ms ? boost::json::value(Time(*i.last_heartbeat_ms))
                                             : boost::json::value(nullptr)},
      {"restarts", i.restarts},
      {"skipped_runs", i.skipped_runs},
      {"current_run", i.current_run_json.empty() ? boost::json::value(nullptr)
                                                 : ParseOr(i.current_run_json, nullptr)},
      {"created_at", Time(i.created_at_ms)},
      {"state_reason", i.state_reason},
      {"mode", i.run_mode.empty() ? "daemon" : i.run_mode},
  };
  if (i.run_mode == "once")
    o["interval"] = FormatDuration(std::chrono::milliseconds(i.run_interval_ms));
  if (i.last_run) {
    const auto& r = *i.last_run;
    o["last_run"] = {
        {"seq", r.seq},
        {"commit", r.commit},
        {"status", r.status},
        {"exit_code", r.main_exit ? boost::json::value(*r.main_exit) : boost::json::value(nullptr)},
        {"duration_ms", r.duration_ms},
        {"finished_at", Time(r.finished_at_ms)}};
  } else {
    o["last_run"] = nullptr;
  }
  return o;
}

// Phase and counts from the instances (docs/environments.md). Starting instances is the fleet
// controller's; until it runs, a static environment is as ready as the agents that joined it.
boost::json::object StatusJson(const Environment& e, const DesiredCapacity& d,
                               const std::vector<Instance>& instances) {
  InstanceTally tally;
  for (const auto& i : instances) tally.Add(i.state);
  int64_t running = tally.running;
  std::optional<int64_t> desired = d.desired;
  Phase phase = PhaseOf(!e.spec_error.empty(), desired, tally);
  boost::json::array list;
  for (const auto& i : instances) list.push_back(InstanceJson(i));
  std::string reason =
      desired ? fmt::format("{} of {} instances running", running, *desired)
              : fmt::format("{} instances running; capacity map leaves this group alone", running);
  boost::json::array conditions;
  if (!e.spec_error.empty()) {
    // Nothing acts on a spec that does not parse: say so rather than show its defaults.
    conditions.push_back({{"type", "SpecValid"}, {"status", false}, {"reason", e.spec_error}});
  }
  conditions.push_back({{"type", "Ready"}, {"status", phase == Phase::kReady}, {"reason", reason}});
  return {
      {"phase", Name(phase)},
      {"desired", desired ? boost::json::value(*desired) : boost::json::value(nullptr)},
      {"desired_from", d.source},
      {"running", running},
      {"instances", std::move(list)},
      {"conditions", std::move(conditions)},
  };
}

// With `instances` and `desired`, the status too.
boost::json::object EnvironmentJson(const Environment& e, const http::Principal& caller,
                                    const std::vector<Instance>* instances = nullptr,
                                    const DesiredCapacity* desired = nullptr) {
  boost::json::object o{
      {"kind", "Environment"},
      {"name", e.name},
      {"tenant", e.tenant},
      {"spec", ParseOr(e.spec_json, boost::json::object())},
      {"scale_capacity",
       e.scale_capacity ? ParseOr(*e.scale_capacity, nullptr) : boost::json::value(nullptr)},
      {"create_index", e.create_index},
      {"modify_index", e.modify_index},
      {"created_at", Time(e.created_at_ms)},
      {"updated_at", Time(e.updated_at_ms)},
      // When proxied traffic (the gateway) last reached it: activity for its idle timeout.
      {"active_at", Time(e.active_at_ms)},
  };
  if (instances && desired) {
    auto status = StatusJson(e, *desired, *instances);
    // The join token is the environment owner's to hand out: not for read-only keys.
    if (caller.role == http::Role::kAdmin || caller.role == http::Role::kUser) {
      status["join_token"] = e.join_token;
    }
    o["status"] = std::move(status);
  }
  return o;
}

// The capacity in force now and where it comes from.
DesiredCapacity CapacityNow(Services& envs, const Environment& e) {
  return envs.environments.CapacityOf(e, ToUnixMillis(SystemClock::Get().Now()));
}

// The environment named in the path, as the caller's tenant sees it.
Result<std::pair<std::string, std::string>> EnvAddress(const Request& req) {
  auto tenant = http::RequestTenant(req);
  if (!tenant.ok()) return tenant.status();
  const std::string& name = req.Param("name");
  if (!IsValidName(name)) {
    return Status::InvalidArgument("environment name " + std::string(kNameRule));
  }
  return std::make_pair(std::move(*tenant), name);
}

std::optional<int64_t> OptInt(JsonDecoder& d, std::string_view field) {
  return d.Int(field, false);
}

int64_t TimeField(JsonDecoder& d, std::string_view field, bool required) {
  auto s = d.String(field, required);
  if (!s) return 0;
  auto t = ParseRfc3339(*s);
  if (!t) {
    d.AddError(field, "must be an RFC 3339 time like 2026-12-01T13:00:00Z");
    return 0;
  }
  return ToUnixMillis(*t);
}

Result<RunReport> ParseRunReport(const Request& req) {
  auto body = http::ReadJsonBody(req);
  if (!body.ok()) return body.status();
  JsonDecoder d(*body);
  RunReport r;
  if (auto id = d.String("run_id", true)) {
    if (id->empty() || id->size() > 128) d.AddError("run_id", "must be 1..128 characters");
    r.run_id = *id;
  }
  r.var_index = d.Int("index", false).value_or(0);
  r.commit = d.String("commit", false).value_or("");
  if (r.commit.size() > 64) d.AddError("commit", "must be at most 64 characters");
  if (auto st = d.String("status", true)) {
    if (*st != "ok" && *st != "failed" && *st != "skipped") {
      d.AddError("status", "must be one of ok, failed, skipped");
    }
    r.status = *st;
  }
  r.reason = d.String("reason", false).value_or("");
  if (r.reason.size() > 4096) d.AddError("reason", "must be at most 4096 bytes");
  r.pre_exit = OptInt(d, "pre_exit");
  r.main_exit = OptInt(d, "main_exit");
  r.post_exit = OptInt(d, "post_exit");
  r.started_at_ms = TimeField(d, "started_at", true);
  r.finished_at_ms = TimeField(d, "finished_at", true);
  if (r.finished_at_ms < r.started_at_ms) d.AddError("finished_at", "is before started_at");
  r.log_tail = d.String("log_tail", false).value_or("");
  if (r.log_tail.size() > kMaxLogTail) {
    // Keep the tail: the end of a log says why it ended.
    r.log_tail.erase(0, r.log_tail.size() - kMaxLogTail);
  }
  if (r.log_tail.find('\0') != std::string::npos) {
    d.AddError("log_tail", "must not contain the NUL character");
  }
  DROVER_RETURN_IF_ERROR(d.Finish());
  return r;
}

boost::json::object RunJson(const Run& run, bool with_log) {
  const auto& r = run.report;
  auto opt = [](const std::optional<int64_t>& v) {
    return v ? boost::json::value(*v) : boost::json::value(nullptr);
  };
  boost::json::object o{{"seq", run.seq},
                        {"run_id", r.run_id},
                        {"index", r.var_index},
                        {"commit", r.commit},
                        {"status", r.status},
                        {"reason", r.reason},
                        {"pre_exit", opt(r.pre_exit)},
                        {"main_exit", opt(r.main_exit)},
                        {"post_exit", opt(r.post_exit)},
                        {"started_at", Time(r.started_at_ms)},
                        {"finished_at", Time(r.finished_at_ms)},
                        {"duration_ms", r.finished_at_ms - r.started_at_ms},
                        {"received_at", Time(run.received_at_ms)}};
  if (with_log) o["log_tail"] = r.log_tail;
  return o;
}

Result<int64_t> RunSeqParam(const Request& req) {
  const std::string& n = req.Param("n");
  int64_t v = 0;
  for (char c : n) {
    if (c < '0' || c > '9' || v > 1'000'000'000'000LL) v = -1;
    if (v < 0) break;
    v = v * 10 + (c - '0');
  }
  if (n.empty() || v <= 0) return Status::InvalidArgument("run number must be a positive integer");
  return v;
}

// The run /v1/instances/{id}/runs/{n} names, as the caller may see it.
Result<Run> RunInPath(Services& envs, const Request& req) {
  auto inst = envs.instances.InstanceFor(*req.principal, req.Param("id"));
  if (!inst.ok()) return inst.status();
  auto seq = RunSeqParam(req);
  if (!seq.ok()) return seq.status();
  return envs.runs.GetRun(inst->id, *seq);
}

void AddEnvironmentCrud(http::Router& router, Services& envs, store::Store& store,
                        http::Waiters& waiters, ProviderPolicy providers) {
  router.Add(http::Method::kPut, "/v1/environments/{name}", http::Access::kAny,
             [&envs, providers](Request& req, Responder respond) {
               auto addr = EnvAddress(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto doc = http::ReadDocument(req);
               if (!doc.ok()) return http::SendError(respond, doc.status());
               auto spec = ParseEnvironmentDocument(*doc, addr->second);
               if (!spec.ok()) return http::SendError(respond, spec.status());
               bool admin = req.caller().role == http::Role::kAdmin;
               if (Status s = providers.Allow(*spec, admin); !s.ok()) {
                 return http::SendError(respond, s);
               }
               auto caller = req.principal;
               envs.environments.Put(addr->first, addr->second, std::move(*spec),
                                     [respond, caller](Result<std::pair<Environment, Written>> r) {
                                       if (!r.ok()) return http::SendError(respond, r.status());
                                       auto body = EnvironmentJson(r->first, *caller);
                                       bool created = r->second == Written::kCreated;
                                       if (created) body["join_token"] = r->first.join_token;
                                       respond(http::WrittenResponse(r->second, body));
                                     });
             });
  router.Add(http::Method::kGet, "/v1/environments/{name}", http::Access::kAny,
             [&envs, &store, &waiters](Request& req, Responder respond) {
               auto addr = EnvAddress(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               http::ServeRead(
                   waiters, kTopic, req, respond,
                   [&envs, &store, respond, addr = *addr, caller = req.principal,
                    inm = std::string(req.Header("If-None-Match"))] {
                     int64_t index = store.LastIndex();
                     auto e = envs.environments.Get(addr.first, addr.second);
                     if (!e.ok()) return http::SendError(respond, e.status());
                     auto inst = envs.instances.Instances(addr.first, addr.second);
                     if (!inst.ok()) return http::SendError(respond, inst.status());
                     auto d = CapacityNow(envs, *e);
                     http::RespondWithIndex(
                         respond, inm,
                         http::JsonResponse(200, EnvironmentJson(*e, *caller, &*inst, &d)), index);
                   });
             });
  router.Add(http::Method::kGet, "/v1/environments", http::Access::kAny,
             [&envs](Request& req, Responder respond) {
               auto tenant = http::RequestTenant(req);
               if (!tenant.ok()) return http::SendError(respond, tenant.status());
               auto limit = http::ReadLimit(req, 100, 1000);
               if (!limit.ok()) return http::SendError(respond, limit.status());
               auto page = envs.environments.List(
                   *tenant, std::string(req.Query("cursor").value_or("")), *limit);
               if (!page.ok()) return http::SendError(respond, page.status());
               boost::json::array items;
               for (const auto& e : page->items) {
                 auto inst = envs.instances.Instances(e.tenant, e.name);
                 if (!inst.ok()) return http::SendError(respond, inst.status());
                 auto d = CapacityNow(envs, e);
                 auto o = EnvironmentJson(e, *req.principal, &*inst, &d);
                 o["status"].as_object().erase("instances");  // a summary per environment
                 items.push_back(std::move(o));
               }
               boost::json::object body{{"items", std::move(items)}};
               http::SetNextCursor(body, page->next_cursor);
               respond(http::JsonResponse(200, body));
             });
  router.Add(http::Method::kDelete, "/v1/environments/{name}", http::Access::kAny,
             [&envs](Request& req, Responder respond) {
               auto addr = EnvAddress(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               envs.environments.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });
  router.Add(http::Method::kPost, "/v1/environments/{name}/scale", http::Access::kAny,
             [&envs](Request& req, Responder respond) {
               auto addr = EnvAddress(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto body = http::ReadJsonBody(req);
               if (!body.ok()) return http::SendError(respond, body.status());
               JsonDecoder d(*body);
               std::string capacity;
               if (const auto* c = d.Raw("capacity", true)) {
                 if (c->is_object()) {
                   capacity = ToJson(*c);
                 } else if (c->is_int64() && c->as_int64() >= 0) {
                   capacity = std::to_string(c->as_int64());
                 } else {
                   d.AddError("capacity", "must be a whole number or a capacity map");
                 }
               }
               if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               auto caller = req.principal;
               envs.environments.Scale(
                   addr->first, addr->second, std::move(capacity),
                   [respond, caller](Result<Environment> e) {
                     if (!e.ok()) return http::SendError(respond, e.status());
                     respond(http::JsonResponse(200, EnvironmentJson(*e, *caller)));
                   });
             });
  router.Add(http::Method::kGet, "/v1/environments/{name}/instances", http::Access::kAny,
             [&envs](Request& req, Responder respond) {
               auto addr = EnvAddress(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto all = http::ReadBool(req, "all");
               if (!all.ok()) return http::SendError(respond, all.status());
               if (auto e = envs.environments.Get(addr->first, addr->second); !e.ok()) {
                 return http::SendError(respond, e.status());
               }
               auto inst = envs.instances.Instances(addr->first, addr->second, *all);
               if (!inst.ok()) return http::SendError(respond, inst.status());
               boost::json::array items;
               for (const auto& i : *inst) items.push_back(InstanceJson(i));
               respond(http::JsonResponse(200, boost::json::object{{"items", std::move(items)},
                                                                   {"next_cursor", nullptr}}));
             });
  router.Add(
      http::Method::kGet, "/v1/environments/{name}/events", http::Access::kAny,
      [&envs](Request& req, Responder respond) {
        auto addr = EnvAddress(req);
        if (!addr.ok()) return http::SendError(respond, addr.status());
        auto limit = http::ReadLimit(req, 100, 1000);
        if (!limit.ok()) return http::SendError(respond, limit.status());
        if (auto e = envs.environments.Get(addr->first, addr->second); !e.ok()) {
          return http::SendError(respond, e.status());
        }
        auto page = envs.events.Events(addr->first, addr->second,
                                       std::string(req.Query("cursor").value_or("")), *limit);
        if (!page.ok()) return http::SendError(respond, page.status());
        boost::json::array items;
        for (const auto& ev : page->items) {
          items.push_back({{"seq", ev.seq},
                           {"time", Time(ev.at_ms)},
                           {"kind", ev.kind},
                           {"instance", ev.instance.empty() ? boost::json::value(nullptr)
                                                            : boost::json::value(ev.instance)},
                           {"reason", ev.reason}});
        }
        boost::json::object body{{"items", std::move(items)}};
        http::SetNextCursor(body, page->next_cursor);
        respond(http::JsonResponse(200, body));
      });
}

void AddAgentRoutes(http::Router& router, Services& envs) {
  // The join token is the credential here, not an API key: the route is public to the pipeline
  // and checks the token itself.
  router.Add(http::Method::kPost, "/v1/environments/{name}/join", http::Access::kPublic,
             [&envs](Request& req, Responder respond) {
               const std::string& name = req.Param("name");
               if (!IsValidName(name)) {
                 return http::SendError(respond, Status::InvalidArgument("environment name " +
                                                                         std::string(kNameRule)));
               }
               std::string_view auth = req.Header("Authorization");
               if (!auth.starts_with("Bearer ") || auth.size() <= 7) {
                 auto r = Response::Problem(
                     401, "", "send the join token as 'Authorization: Bearer <token>'");
                 r.AddHeader("WWW-Authenticate", "Bearer");
                 return respond(std::move(r));
               }
               std::string hostname, facts = "{}", instance_id;
               if (!req.body.empty()) {
                 auto body = http::ReadJsonBody(req);
                 if (!body.ok()) return http::SendError(respond, body.status());
                 JsonDecoder d(*body);
                 hostname = d.String("hostname", false).value_or("");
                 instance_id = d.String("instance_id", false).value_or("");
                 if (instance_id.size() > 64) d.AddError("instance_id", "at most 64 characters");
                 if (hostname.size() > 255)
                   d.AddError("hostname", "must be at most 255 characters");
                 if (const auto* f = d.Raw("facts", false)) {
                   if (!f->is_object()) d.AddError("facts", "must be an object");
                   facts = ToJson(*f);
                   if (facts.size() > 16384) d.AddError("facts", "must be at most 16 KiB as JSON");
                 }
                 if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               }
               envs.instances.Join(
                   name, std::string(auth.substr(7)), std::move(hostname), std::move(facts),
                   std::move(instance_id), [respond](Result<Joined> j) {
                     if (!j.ok()) return http::SendError(respond, j.status());
                     const auto& h = j->environment.spec.health;
                     respond(http::JsonResponse(
                         201, boost::json::object{
                                  {"instance_id", j->instance_id},
                                  {"agent_key", j->agent_key},
                                  {"environment", j->environment.name},
                                  {"heartbeat_interval", FormatDuration(h.heartbeat_interval)}}));
                   });
             });
  router.Add(http::Method::kGet, "/v1/instances/{id}", http::Access::kAgent,
             [&envs](Request& req, Responder respond) {
               auto inst = envs.instances.InstanceFor(*req.principal, req.Param("id"));
               if (!inst.ok()) return http::SendError(respond, inst.status());
               respond(http::JsonResponse(200, InstanceJson(*inst)));
             });
  router.Add(
      http::Method::kPost, "/v1/instances/{id}/heartbeat", http::Access::kAgent,
      [&envs](Request& req, Responder respond) {
        Heartbeat hb;
        if (!req.body.empty()) {
          auto body = http::ReadJsonBody(req);
          if (!body.ok()) return http::SendError(respond, body.status());
          JsonDecoder d(*body);
          hb.agent_version = d.String("agent_version", false).value_or("");
          hb.hostname = d.String("hostname", false).value_or("");
          if (hb.agent_version.size() > 64) d.AddError("agent_version", "at most 64 characters");
          if (hb.hostname.size() > 255) d.AddError("hostname", "at most 255 characters");
          if (const auto* f = d.Raw("facts", false)) {
            if (!f->is_object()) d.AddError("facts", "must be an object");
            hb.facts_json = ToJson(*f);
          }
          if (const auto* c = d.Raw("current_run", false)) {
            if (!c->is_object()) d.AddError("current_run", "must be an object or null");
            hb.current_run_json = ToJson(*c);
          }
          if (hb.facts_json.size() + hb.current_run_json.size() > 16384) {
            d.AddError("facts", "facts and current_run must be at most 16 KiB as JSON");
          }
          if (auto n = d.Int("skipped_runs", false)) {
            if (*n < 0) d.AddError("skipped_runs", "must not be negative");
            hb.skipped_runs = *n;
          }
          if (auto m = d.String("mode", false)) {
            if (*m != "daemon" && *m != "once") d.AddError("mode", "must be daemon or once");
            hb.run_mode = *m;
          }
          if (auto iv = d.String("interval", false)) {
            auto ms = ParseDuration(*iv);
            if (!ms || ms->count() < 1000) {
              d.AddError("interval", "must be a duration of at least 1s, like 10m");
            } else {
              hb.run_interval_ms = ms->count();
            }
          }
          if (hb.run_mode == "once" && hb.run_interval_ms == 0) {
            d.AddError("interval", "is required with mode once (how often cron runs the agent)");
          }
          if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
        }
        envs.instances.RecordHeartbeat(
            *req.principal, req.Param("id"), std::move(hb),
            [respond](Result<std::chrono::milliseconds> interval) {
              if (!interval.ok()) return http::SendError(respond, interval.status());
              respond(http::JsonResponse(
                  200, boost::json::object{{"heartbeat_interval", FormatDuration(*interval)}}));
            });
      });
  // The agent stops for good (SIGTERM): the instance is terminated, its key revoked.
  router.Add(http::Method::kPost, "/v1/instances/{id}/leave", http::Access::kAgent,
             [&envs](Request& req, Responder respond) {
               std::string reason = "its agent stopped";
               if (!req.body.empty()) {
                 auto body = http::ReadJsonBody(req);
                 if (!body.ok()) return http::SendError(respond, body.status());
                 JsonDecoder d(*body);
                 reason = d.String("reason", false).value_or(reason);
                 if (reason.empty() || reason.size() > 1024) {
                   d.AddError("reason", "must be 1..1024 characters");
                 }
                 if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               }
               auto inst = envs.instances.InstanceFor(*req.principal, req.Param("id"));
               if (!inst.ok()) return http::SendError(respond, inst.status());
               envs.instances.Leave(std::move(*inst), "left: " + reason,
                                    http::NoContentOr(respond));
             });
  // Forget an instance (drover env instances rm): its row, runs and agent key.
  router.Add(http::Method::kDelete, "/v1/instances/{id}", http::Access::kAny,
             [&envs](Request& req, Responder respond) {
               auto inst = envs.instances.InstanceFor(*req.principal, req.Param("id"));
               if (!inst.ok()) return http::SendError(respond, inst.status());
               envs.instances.Forget(std::move(*inst), http::NoContentOr(respond));
             });
  router.Add(http::Method::kPost, "/v1/instances/{id}/runs", http::Access::kAgent,
             [&envs](Request& req, Responder respond) {
               auto inst = envs.instances.InstanceFor(*req.principal, req.Param("id"));
               if (!inst.ok()) return http::SendError(respond, inst.status());
               auto report = ParseRunReport(req);
               if (!report.ok()) return http::SendError(respond, report.status());
               envs.runs.RecordRun(
                   std::move(*inst), std::move(*report), [respond](Result<std::pair<Run, bool>> r) {
                     if (!r.ok()) return http::SendError(respond, r.status());
                     respond(http::JsonResponse(r->second ? 201 : 200, RunJson(r->first, false)));
                   });
             });
  router.Add(http::Method::kGet, "/v1/instances/{id}/runs", http::Access::kAgent,
             [&envs](Request& req, Responder respond) {
               auto inst = envs.instances.InstanceFor(*req.principal, req.Param("id"));
               if (!inst.ok()) return http::SendError(respond, inst.status());
               auto limit = http::ReadLimit(req, 50, 1000);
               if (!limit.ok()) return http::SendError(respond, limit.status());
               auto page =
                   envs.runs.Runs(inst->id, std::string(req.Query("cursor").value_or("")), *limit);
               if (!page.ok()) return http::SendError(respond, page.status());
               boost::json::array items;
               for (const auto& r : page->items) items.push_back(RunJson(r, false));
               boost::json::object body{{"items", std::move(items)}};
               http::SetNextCursor(body, page->next_cursor);
               respond(http::JsonResponse(200, body));
             });
  router.Add(http::Method::kGet, "/v1/instances/{id}/runs/{n}", http::Access::kAgent,
             [&envs](Request& req, Responder respond) {
               auto run = RunInPath(envs, req);
               if (!run.ok()) return http::SendError(respond, run.status());
               respond(http::JsonResponse(200, RunJson(*run, true)));
             });
  router.Add(http::Method::kGet, "/v1/instances/{id}/runs/{n}/log", http::Access::kAgent,
             [&envs](Request& req, Responder respond) {
               auto run = RunInPath(envs, req);
               if (!run.ok()) return http::SendError(respond, run.status());
               auto r = Response::Json(200, std::move(run->report.log_tail));
               r.content_type = "text/plain; charset=utf-8";
               respond(std::move(r));
             });
}

}  // namespace

void AddEnvironmentRoutes(http::Router& router, Services& envs, store::Store& store,
                          http::Waiters& waiters, ProviderPolicy providers) {
  AddEnvironmentCrud(router, envs, store, waiters, std::move(providers));
  AddAgentRoutes(router, envs);
}

}  // namespace drover::env
