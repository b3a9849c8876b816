#include "workflows/workflows_api.h"

// GCC 12 reports Asio's coroutine frames (allocated by its recycling allocator, freed by the
// matching operator delete) as mismatched once the frames are inlined: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "common/clock.h"
#include "common/json.h"
#include "common/names.h"
#include "common/text.h"
#include "common/trace.h"
#include "http/change_wait.h"
#include "http/handler_util.h"
#include "http/sse.h"
#include "http/stream.h"

namespace drover::workflows {
namespace {

namespace json = boost::json;
using http::Request;
using http::Responder;

constexpr size_t kMaxInputBytes = 256 * 1024;

json::value Time(int64_t ms) {
  return ms ? json::value(FormatRfc3339(FromUnixMillis(ms))) : json::value(nullptr);
}

json::object WorkflowJson(const Workflow& w) {
  json::object o{{"name", w.name},
                 {"tenant", w.tenant},
                 {"version", w.version},
                 {"spec", ParseJsonOrNull(w.spec_json)},
                 {"modify_index", w.modify_index},
                 {"created_at", Time(w.created_at_ms)},
                 {"updated_at", Time(w.updated_at_ms)}};
  if (!w.versions.empty()) {
    json::array v;
    for (auto n : w.versions) v.push_back(n);
    o["versions"] = std::move(v);
  }
  return o;
}

json::object StepJson(const std::string& name, std::string_view type, const StepState& st) {
  return {{"name", name},
          {"type", type},
          {"status", StepStatusName(st.status)},
          {"attempt", st.attempt},
          {"output", ParseJsonOrNull(st.output)},
          {"error", st.error.empty() ? json::value(nullptr) : json::value(st.error)},
          {"scheduled_at", Time(st.scheduled_at_ms)},
          {"started_at", Time(st.started_at_ms)},
          {"ended_at", Time(st.ended_at_ms)}};
}

// An execution as the API shows it; with `spec`, its steps in the definition's order.
json::object ExecutionJson(const Execution& e, const WorkflowSpec* spec) {
  const auto& s = e.state;
  json::object o{{"id", e.id},
                 {"workflow", e.workflow},
                 {"version", e.version},
                 {"status", ExecutionStatusName(s.status)},
                 {"run", s.run},
                 {"input", ParseJsonOrNull(s.input)},
                 {"output", ParseJsonOrNull(s.output)},
                 {"error", s.error.empty() ? json::value(nullptr) : json::value(s.error)},
                 {"created_at", Time(s.created_at_ms)},
                 {"started_at", Time(s.started_at_ms)},
                 {"ended_at", Time(s.ended_at_ms)},
                 {"last_event", s.last_seq}};
  if (!e.concurrency_key.empty()) o["concurrency_key"] = e.concurrency_key;
  if (auto trace = TraceIdOf(e.traceparent); !trace.empty()) o["trace_id"] = trace;
  if (spec) {
    json::array steps;
    json::array current;
    for (int i = 0; i < spec->size(); ++i) {
      const auto& sp = spec->At(i);
      auto it = s.steps.find(sp.name);
      StepState st = it == s.steps.end() ? StepState{} : it->second;
      if (st.status == StepStatus::kScheduled || st.status == StepStatus::kRunning) {
        current.push_back(json::string(sp.name));
      }
      steps.push_back(StepJson(sp.name, StepTypeName(sp.type), st));
    }
    o["current_steps"] = std::move(current);
    o["steps"] = std::move(steps);
  }
  return o;
}

json::object EventJson(const Event& e) {
  json::object o{{"seq", e.seq},         {"id", e.Id()},        {"kind", e.kind},
                 {"attempt", e.attempt}, {"at", Time(e.at_ms)}, {"data", ParseJsonOrNull(e.data)}};
  if (!e.step.empty()) o["step"] = e.step;
  return o;
}

// An execution id: a UUID as this server makes them (anything else names nothing).
bool IsExecutionId(std::string_view id) {
  if (id.size() != 36) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The tenant and the execution id of the path.
Result<std::pair<std::string, std::string>> ExecutionAddress(const Request& req) {
  auto tenant = http::RequestTenant(req);
  if (!tenant.ok()) return tenant.status();
  const std::string& id = req.Param("id");
  if (!IsExecutionId(id)) {
    return Status::NotFound(fmt::format("execution '{}' does not exist", id));
  }
  return std::make_pair(std::move(*tenant), id);
}

// Answers an execution with its steps (the definition read for their order and types).
std::function<void(Result<Execution>)> RespondExecution(WorkflowService& workflows,
                                                        Responder respond, int code = 200) {
  return [&workflows, respond, code](Result<Execution> r) {
    if (!r.ok()) return http::SendError(respond, r.status());
    auto spec = workflows.Spec(r->tenant, r->workflow, r->version);
    respond(http::JsonResponse(code, ExecutionJson(*r, spec.ok() ? spec->get() : nullptr)));
  };
}

// `{attempt, output}` / `{attempt, error, retryable}` of a worker's report.
struct Report {
  int attempt = 0;
  std::string output = "null", error;
  bool retryable = true;
};
Result<Report> ReadReport(const Request& req, bool failed) {
  auto body = http::ReadJsonBody(req);
  if (!body.ok()) return body.status();
  JsonDecoder d(*body);
  Report r;
  if (auto a = d.Int("attempt", true)) {
    if (*a < 1 || *a > 1'000'000) d.AddError("attempt", "must be 1..1000000");
    r.attempt = static_cast<int>(*a);
  }
  if (failed) {
    if (auto e = d.String("error", false)) r.error = e->substr(0, 64 * 1024);
    if (auto b = d.Bool("retryable", false)) r.retryable = *b;
  } else if (const auto* o = d.Raw("output", false)) {
    r.output = ToJson(*o);
    if (r.output.size() > kMaxInputBytes) d.AddError("output", "must be at most 256 KiB");
  }
  DROVER_RETURN_IF_ERROR(d.Finish());
  return r;
}

Result<int64_t> ReadSeq(std::string_view v, std::string_view what) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0) {
    return Status::InvalidArgument(fmt::format("{} must be an event's seq", what));
  }
  return n;
}

constexpr int kStreamPage = 500;

// Built outside the coroutines: GCC 12 cannot compile braced initializer lists in them.
http::Response EventsPage(const std::vector<Event>& events) {
  json::array items;
  for (const auto& e : events) items.push_back(EventJson(e));
  json::object body;
  body["items"] = std::move(items);
  return http::JsonResponse(200, body);
}

http::Response RebuiltAnswer(int64_t n) {
  json::object body;
  body["executions"] = n;
  return http::JsonResponse(200, body);
}
constexpr auto kHeartbeat = std::chrono::seconds(15);

// GET /v1/executions/{id}/events: the log as JSON (after ?after=), or with Accept:
// text/event-stream every event as it is appended (id: its seq; resumes after Last-Event-ID),
// with heartbeats, until the client goes away or the server stops.
boost::asio::awaitable<void> ServeEvents(ExecutionService& executions, store::Store& store,
                                         http::Waiters& waiters, http::Exchange& ex) {
  Request& req = ex.request();
  auto addr = ExecutionAddress(req);
  if (!addr.ok()) {
    co_await ex.Reply(http::Response::Problem(addr.status()));
    co_return;
  }
  int64_t after = 0;
  if (auto a = req.Query("after")) {
    auto n = ReadSeq(*a, "after");
    if (!n.ok()) {
      co_await ex.Reply(http::Response::Problem(n.status()));
      co_return;
    }
    after = *n;
  }
  const bool sse = http::WantsEventStream(req);
  if (std::string_view id = req.Header("Last-Event-ID"); sse && !id.empty()) {
    auto n = ReadSeq(id, "Last-Event-ID");
    if (!n.ok()) {
      co_await ex.Reply(http::Response::Problem(n.status()));
      co_return;
    }
    after = *n;
  }
  auto limit = http::ReadLimit(req, 1000, 10000);
  if (!limit.ok()) {
    co_await ex.Reply(http::Response::Problem(limit.status()));
    co_return;
  }
  bool began = false;
  auto last_write = std::chrono::steady_clock::now();
  for (;;) {
    int64_t upto = store.LastIndex();  // before the read: a change after it wakes the wait
    Result<std::vector<Event>> events = Status::Unavailable("the server is busy");
    std::function<void()> read = [&] {
      events = executions.Events(addr->first, addr->second, after, sse ? kStreamPage : *limit);
    };
    bool ran = co_await ex.RunBlocking(std::move(read));
    if (!began) {
      if (!ran) {
        co_await ex.Reply(http::Busy());
        co_return;
      }
      if (!events.ok()) {
        co_await ex.Reply(http::Response::Problem(events.status()));
        co_return;
      }
      if (!sse) {
        co_await ex.Reply(EventsPage(*events));
        co_return;
      }
      if (!co_await http::BeginSse(ex)) co_return;
      began = true;
    } else if (!events.ok()) {
      // The store is away: say so; the client reconnects and resumes where it was.
      co_await ex.Write(http::FormatSseEvent("", "error", "{\"error\":\"store unavailable\"}"));
      co_return;
    }
    std::string out;
    for (const auto& e : *events) {
      out += http::FormatSseEvent(std::to_string(e.seq), e.kind, ToJson(EventJson(e)));
      after = e.seq;
    }
    if (!out.empty()) {
      if (!co_await ex.Write(out)) co_return;
      last_write = std::chrono::steady_clock::now();
    }
    if (static_cast<int>(events->size()) == kStreamPage) continue;  // more to catch up on
    if (waiters.stopped()) co_return;
    auto idle = std::chrono::steady_clock::now() - last_write;
    if (idle >= kHeartbeat) {
      if (!co_await ex.Write(http::FormatSseComment("heartbeat"))) co_return;
      last_write = std::chrono::steady_clock::now();
      idle = {};
    }
    co_await http::WaitForChange(
        waiters, ExecutionTopic(addr->second), upto,
        std::chrono::duration_cast<std::chrono::milliseconds>(kHeartbeat - idle));
  }
}

}  // namespace

void AddWorkflowRoutes(http::Router& router, WorkflowService& workflows,
                       ExecutionService& executions, store::Store& store, http::Waiters& waiters) {
  using http::Access;
  using http::Method;
  router.Add(Method::kPut, "/v1/workflows/{name}", Access::kAny,
             [&workflows](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "workflow");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               auto doc = http::ReadDocument(req);
               if (!doc.ok()) return http::SendError(respond, doc.status());
               auto spec = ParseWorkflowDocument(*doc, addr->second);
               if (!spec.ok()) return http::SendError(respond, spec.status());
               // The spec as given (a bare spec, or the document's), compact.
               const auto& top = doc->as_object();
               const json::value* s = top.if_contains("spec");
               std::string text = ToJson(s ? *s : *doc);
               workflows.Put(addr->first, addr->second, std::move(text),
                             [respond](Result<std::pair<Workflow, Written>> r) {
                               if (!r.ok()) return http::SendError(respond, r.status());
                               respond(http::WrittenResponse(r->second, WorkflowJson(r->first)));
                             });
             });
  router.Add(Method::kGet, "/v1/workflows/{name}", Access::kAny,
             [&workflows](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "workflow");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               int64_t version = 0;
               if (auto v = req.Query("version")) {
                 auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), version);
                 if (ec != std::errc() || p != v->data() + v->size() || version < 1) {
                   return http::SendError(
                       respond, Status::InvalidArgument("version: must be a positive integer"));
                 }
               }
               auto w = workflows.Get(addr->first, addr->second, version);
               if (!w.ok()) return http::SendError(respond, w.status());
               respond(http::JsonResponse(200, WorkflowJson(*w)));
             });
  router.Add(Method::kGet, "/v1/workflows", Access::kAny,
             [&workflows](Request& req, Responder respond) {
               http::RespondList(req, respond, workflows, WorkflowJson);
             });
  router.Add(Method::kDelete, "/v1/workflows/{name}", Access::kAny,
             [&workflows](Request& req, Responder respond) {
               auto addr = http::TenantAndName(req, "workflow");
               if (!addr.ok()) return http::SendError(respond, addr.status());
               workflows.Delete(addr->first, addr->second, http::NoContentOr(respond));
             });

  router.Add(
      Method::kPost, "/v1/workflows/{name}/executions", Access::kAny,
      [&workflows, &executions](Request& req, Responder respond) {
        auto addr = http::TenantAndName(req, "workflow");
        if (!addr.ok()) return http::SendError(respond, addr.status());
        std::string input = "null";
        if (!req.body.empty()) {
          auto body = http::ReadJsonBody(req);
          if (!body.ok()) return http::SendError(respond, body.status());
          JsonDecoder d(*body);
          if (const auto* in = d.Raw("input", false)) input = ToJson(*in);
          if (input.size() > kMaxInputBytes) d.AddError("input", "must be at most 256 KiB");
          if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
        }
        std::string key(req.Header("Idempotency-Key"));
        if (key.size() > 255 || !IsValidText(key)) {
          return http::SendError(
              respond,
              Status::Validation({{"Idempotency-Key", "must be UTF-8 text of at most 255 bytes"}}));
        }
        std::string traceparent = req.Traceparent();
        executions.Create(
            addr->first, addr->second, std::move(input), std::move(key),
            [&workflows, respond](Result<ExecutionService::Created> r) {
              if (!r.ok()) return http::SendError(respond, r.status());
              const Execution& e = r->execution;
              auto spec = r->replayed
                              ? workflows.Spec(e.tenant, e.workflow, e.version)
                              : Result<std::shared_ptr<const WorkflowSpec>>(Status::NotFound(""));
              auto body = r->replayed ? ExecutionJson(e, spec.ok() ? spec->get() : nullptr)
                                      : json::object{{"id", e.id},
                                                     {"status", "pending"},
                                                     {"trace_id", TraceIdOf(e.traceparent)}};
              auto resp = http::JsonResponse(201, body);
              resp.AddHeader("Location", "/v1/executions/" + e.id);
              if (r->replayed) resp.AddHeader("Idempotent-Replayed", "true");
              respond(std::move(resp));
            },
            std::move(traceparent));
      });

  router.Add(Method::kGet, "/v1/executions/{id}", Access::kAny,
             [&workflows, &executions, &store, &waiters](Request& req, Responder respond) {
               auto addr = ExecutionAddress(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               std::string topic = ExecutionTopic(addr->second);
               std::string inm(req.Header("If-None-Match"));
               http::ServeRead(waiters, topic, req, respond,
                               [&workflows, &executions, &store, respond, addr = *addr, inm] {
                                 int64_t index = store.LastIndex();  // before the read
                                 auto e = executions.Get(addr.first, addr.second);
                                 if (!e.ok()) return http::SendError(respond, e.status());
                                 auto spec = workflows.Spec(e->tenant, e->workflow, e->version);
                                 http::RespondWithIndex(
                                     respond, inm,
                                     http::JsonResponse(
                                         200, ExecutionJson(*e, spec.ok() ? spec->get() : nullptr)),
                                     index);
                               });
             });
  router.Add(
      Method::kGet, "/v1/executions", Access::kAny, [&executions](Request& req, Responder respond) {
        auto tenant = http::RequestTenant(req);
        if (!tenant.ok()) return http::SendError(respond, tenant.status());
        auto limit = http::ReadLimit(req, 100, 1000);
        if (!limit.ok()) return http::SendError(respond, limit.status());
        ExecutionFilter filter;
        if (auto w = req.Query("workflow")) {
          if (!IsValidName(*w)) {
            return http::SendError(respond,
                                   Status::InvalidArgument("workflow: " + std::string(kNameRule)));
          }
          filter.workflow = std::string(*w);
        }
        if (auto s = req.Query("status")) {
          ExecutionStatus st;
          if (!ParseExecutionStatus(*s, &st)) {
            return http::SendError(
                respond, Status::InvalidArgument("status: must be one of pending, running,"
                                                 " succeeded, failed, cancelled"));
          }
          filter.status = st;
        }
        auto page =
            executions.List(*tenant, filter, std::string(req.Query("cursor").value_or("")), *limit);
        if (!page.ok()) return http::SendError(respond, page.status());
        json::array items;
        for (const auto& e : page->items) items.push_back(ExecutionJson(e, nullptr));
        json::object body{{"items", std::move(items)}};
        http::SetNextCursor(body, page->next_cursor);
        respond(http::JsonResponse(200, body));
      });
  http::AddStreamRoute(router, Method::kGet, "/v1/executions/{id}/events", Access::kAny,
                       [&executions, &store, &waiters](http::Exchange& ex) {
                         return ServeEvents(executions, store, waiters, ex);
                       });

  // Rebuilds every execution's read model from its event log (`drover admin rebuild`).
  http::AddStreamRoute(router, Method::kPost, "/v1/admin/rebuild", Access::kAdmin,
                       [&executions](http::Exchange& ex) -> boost::asio::awaitable<void> {
                         Result<int64_t> n = Status::Unavailable("the server is busy");
                         std::function<void()> run = [&] { n = executions.Rebuild(); };
                         if (!co_await ex.RunBlocking(std::move(run))) {
                           co_await ex.Reply(http::Busy());
                           co_return;
                         }
                         if (!n.ok()) {
                           co_await ex.Reply(http::Response::Problem(n.status()));
                           co_return;
                         }
                         co_await ex.Reply(RebuiltAnswer(*n));
                       });

  auto simple = [&](std::string_view path,
                    void (ExecutionService::*op)(std::string, std::string,
                                                 std::function<void(Result<Execution>)>)) {
    router.Add(Method::kPost, std::string(path), Access::kAny,
               [&workflows, &executions, op](Request& req, Responder respond) {
                 auto addr = ExecutionAddress(req);
                 if (!addr.ok()) return http::SendError(respond, addr.status());
                 (executions.*op)(addr->first, addr->second, RespondExecution(workflows, respond));
               });
  };
  simple("/v1/executions/{id}/cancel", &ExecutionService::Cancel);
  simple("/v1/executions/{id}/retry", &ExecutionService::Retry);

  router.Add(Method::kPost, "/v1/executions/{id}/signals/{name}", Access::kAny,
             [&workflows, &executions](Request& req, Responder respond) {
               auto addr = ExecutionAddress(req);
               if (!addr.ok()) return http::SendError(respond, addr.status());
               const std::string& name = req.Param("name");
               if (!IsValidName(name)) {
                 return http::SendError(
                     respond, Status::InvalidArgument("signal name " + std::string(kNameRule)));
               }
               std::string payload = "null";
               if (!req.body.empty()) {
                 auto body = http::ReadJsonBody(req);
                 if (!body.ok()) return http::SendError(respond, body.status());
                 JsonDecoder d(*body);
                 if (const auto* p = d.Raw("payload", false)) payload = ToJson(*p);
                 if (payload.size() > kMaxInputBytes) {
                   d.AddError("payload", "must be at most 256 KiB");
                 }
                 if (Status s = d.Finish(); !s.ok()) return http::SendError(respond, s);
               }
               executions.Signal(addr->first, addr->second, name, std::move(payload),
                                 RespondExecution(workflows, respond));
             });
  for (bool failed : {false, true}) {
    router.Add(Method::kPost,
               failed ? "/v1/executions/{id}/steps/{step}/fail"
                      : "/v1/executions/{id}/steps/{step}/complete",
               Access::kAgent, [&workflows, &executions, failed](Request& req, Responder respond) {
                 auto addr = ExecutionAddress(req);
                 if (!addr.ok()) return http::SendError(respond, addr.status());
                 const std::string& step = req.Param("step");
                 if (!IsValidName(step)) {
                   return http::SendError(
                       respond, Status::NotFound(fmt::format("no step named '{}'", step)));
                 }
                 auto report = ReadReport(req, failed);
                 if (!report.ok()) return http::SendError(respond, report.status());
                 if (failed) {
                   executions.Fail(addr->first, addr->second, step, report->attempt,
                                   std::move(report->error), report->retryable,
                                   RespondExecution(workflows, respond));
                 } else {
                   executions.Complete(addr->first, addr->second, step, report->attempt,
                                       std::move(report->output),
                                       RespondExecution(workflows, respond));
                 }
               });
  }
}

}  // namespace drover::workflows
