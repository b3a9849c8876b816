// Workflows and executions over HTTP on real servers, with workers speaking the queue API:
// definitions and versions, a DAG end to end, a worker that dies, duplicate and stale reports,
// poison tasks into the dead-letter queue, signals, idempotency, concurrency keys, cancel and
// retry, and the read model rebuilt from the log.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "testing/fixed_http.h"
#include "testing/raw_http.h"
#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

namespace json = boost::json;
using testing::TestServer;

class Workflows : public testing::BackendTest {};
DROVER_ON_ALL_BACKENDS(Workflows);

json::value Json(const client::Response& r) { return json::parse(r.body); }

// What a task handler answers: an output (success) or nullopt (a retryable failure).
using Handler = std::function<std::optional<std::string>(const json::object& task)>;

// One round of a worker: receives up to 10 tasks from `queue`, reports each with the attempt
// the protocol gives (the body's attempt + receive_count - 1), then acks. Returns how many.
int WorkOnce(client::Client& c, const std::string& queue, const Handler& handle,
             bool report = true) {
  auto r = c.Do("POST", "/v1/queues/" + queue + "/receive", R"({"max":10,"wait":"1s"})");
  if (!r.ok() || r->status != 200) return 0;
  auto msgs = Json(*r).at("messages").as_array();
  for (const auto& m : msgs) {
    auto task = json::parse(m.at("body").as_string()).as_object();
    int64_t attempt = task.at("attempt").as_int64() + m.at("receive_count").as_int64() - 1;
    std::string base = "/v1/executions/" + std::string(task.at("execution").as_string()) +
                       "/steps/" + std::string(task.at("step").as_string());
    if (!report) continue;  // a worker that dies mid-task: no report, no ack
    auto out = handle(task);
    if (out) {
      (void)c.Do("POST", base + "/complete",
                 "{\"attempt\":" + std::to_string(attempt) + ",\"output\":" + *out + "}");
    } else {
      (void)c.Do("POST", base + "/fail",
                 "{\"attempt\":" + std::to_string(attempt) + ",\"error\":\"no luck\"}");
    }
    (void)c.Do("DELETE",
               "/v1/queues/" + queue + "/messages/" + std::string(m.at("receipt").as_string()));
  }
  return static_cast<int>(msgs.size());
}

std::string Start(client::Client& c, const std::string& wf, const std::string& input) {
  auto r = c.Do("POST", "/v1/workflows/" + wf + "/executions", "{\"input\":" + input + "}");
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return "";
  EXPECT_EQ(r->status, 201) << r->body;
  if (r->status != 201) return "";
  EXPECT_EQ(Json(*r).at("status").as_string(), "pending");
  std::string id(Json(*r).at("id").as_string());
  EXPECT_EQ(r->Header("Location"), "/v1/executions/" + id);
  return id;
}

json::object Get(client::Client& c, const std::string& id) {
  auto r = c.Do("GET", "/v1/executions/" + id);
  if (!r.ok() || r->status != 200) return {};
  return Json(*r).as_object();
}

std::string Status(client::Client& c, const std::string& id) {
  auto e = Get(c, id);
  return e.contains("status") ? std::string(e.at("status").as_string()) : "";
}

// Works `queue` until the execution has `status`.
bool RunUntil(client::Client& c, const std::string& id, const std::string& queue,
              const std::string& status, const Handler& handle) {
  return testing::WaitFor(
      [&] {
        if (Status(c, id) == status) return true;
        WorkOnce(c, queue, handle);
        return Status(c, id) == status;
      },
      60000);
}

// A workflow of one http step calling `url` with the given timeout.
std::string OneHttpStep(const std::string& step, const std::string& url,
                        const std::string& timeout) {
  return R"({"steps":[{"name":")" + step + R"(","type":"http","url":")" + url + R"(","timeout":")" +
         timeout + R"("}]})";
}

std::vector<std::string> EventKinds(client::Client& c, const std::string& id) {
  std::vector<std::string> out;
  auto r = c.Do("GET", "/v1/executions/" + id + "/events");
  if (!r.ok()) return out;
  json::value body = Json(*r);
  for (const auto& e : body.at("items").as_array()) {
    std::string k(e.at("kind").as_string());
    if (e.as_object().contains("step")) k += ":" + std::string(e.at("step").as_string());
    out.push_back(k + "#" + std::to_string(e.at("attempt").as_int64()));
  }
  return out;
}

TEST_P(Workflows, DefinitionsAreValidatedAndVersioned) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  std::string doc = R"(kind: Workflow
name: nightly
spec:
  steps:
    - {name: prepare, type: task, queue: sim, command: ./prepare.sh}
    - {name: pause, type: sleep, duration: 30s}
)";
  auto put = c.Do("PUT", "/v1/workflows/nightly", doc, {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(put->status, 201) << put->body;
  EXPECT_EQ(Json(*put).at("version").as_int64(), 1);
  auto same = c.Do("PUT", "/v1/workflows/nightly", doc, {{"Content-Type", "application/yaml"}});
  EXPECT_EQ(same->status, 200);
  EXPECT_EQ(same->Header("X-Drover-Unchanged"), "true");
  std::string changed = doc + "    - {name: more, type: sleep, duration: 1s}\n";
  auto v2 = c.Do("PUT", "/v1/workflows/nightly", changed, {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(v2->status, 200) << v2->body;
  EXPECT_EQ(Json(*v2).at("version").as_int64(), 2);
  auto got = c.Do("GET", "/v1/workflows/nightly");
  EXPECT_EQ(Json(*got).at("versions").as_array().size(), 2u);
  auto old = c.Do("GET", "/v1/workflows/nightly?version=1");
  ASSERT_EQ(old->status, 200);
  EXPECT_EQ(Json(*old).at("spec").at("steps").as_array().size(), 2u);
  EXPECT_EQ(c.Do("GET", "/v1/workflows/nightly?version=7")->status, 404);
  EXPECT_EQ(c.Do("GET", "/v1/workflows/nightly?version=x")->status, 400);

  auto bad = c.Do("PUT", "/v1/workflows/broken",
                  R"({"steps":[{"name":"a","type":"task","queue":"q","needs":["b"]}]})");
  ASSERT_EQ(bad->status, 422) << bad->body;
  EXPECT_NE(bad->body.find("spec.steps[0].needs[0]"), std::string::npos) << bad->body;
  for (const char* body : {"[]", "{", R"({"steps":"x"})", R"({"steps":[{"name":"a"}]})"}) {
    auto r = c.Do("PUT", "/v1/workflows/broken", body);
    EXPECT_TRUE(r->status == 400 || r->status == 422) << body << " -> " << r->status;
  }
  EXPECT_EQ(c.Do("PUT", "/v1/workflows/Bad_Name", "{}")->status, 400);
  EXPECT_EQ(c.Do("POST", "/v1/workflows/nope/executions", "{}")->status, 404);
  EXPECT_EQ(c.Do("GET", "/v1/executions/not-a-uuid")->status, 404);
  EXPECT_EQ(c.Do("GET", "/v1/executions/00000000-0000-4000-8000-000000000000")->status, 404);
  EXPECT_EQ(c.Do("GET", "/v1/executions?status=sideways")->status, 400);
  auto list = c.Do("GET", "/v1/workflows");
  EXPECT_EQ(Json(*list).at("items").as_array().size(), 1u);
  EXPECT_EQ(c.Do("DELETE", "/v1/workflows/nightly")->status, 204);
  EXPECT_EQ(c.Do("DELETE", "/v1/workflows/nightly")->status, 404);
}

TEST_P(Workflows, ADagRunsEndToEndWithTemplatedInputs) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/work", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/fan", R"({"steps":[
      {"name":"split","type":"task","queue":"work","command":"split","input":{"n":"{{ input.n }}"}},
      {"name":"left","type":"task","queue":"work","command":"double","needs":["split"],
       "input":"{{ steps.split.output.half }}"},
      {"name":"right","type":"task","queue":"work","command":"double","needs":["split"],
       "input":"{{ steps.split.output.half }}"},
      {"name":"join","type":"task","queue":"work","command":"sum","needs":["left","right"],
       "input":["{{ steps.left.output }}","{{ steps.right.output }}"]}]})")
                ->status,
            201);
  std::string id = Start(c, "fan", R"({"n":10})");
  ASSERT_FALSE(id.empty());
  Handler math = [](const json::object& t) -> std::optional<std::string> {
    std::string cmd(t.at("command").as_string());
    const auto& in = t.at("input");
    if (cmd == "split") return "{\"half\":" + std::to_string(in.at("n").as_int64() / 2) + "}";
    if (cmd == "double") return std::to_string(in.as_int64() * 2);
    return std::to_string(in.at(0).as_int64() + in.at(1).as_int64());
  };
  ASSERT_TRUE(RunUntil(c, id, "work", "succeeded", math)) << json::serialize(Get(c, id));
  auto e = Get(c, id);
  EXPECT_EQ(e.at("output").as_int64(), 20);
  auto steps = e.at("steps").as_array();
  ASSERT_EQ(steps.size(), 4u);
  for (const auto& st : steps) {
    EXPECT_EQ(st.at("status").as_string(), "succeeded");
    EXPECT_EQ(st.at("attempt").as_int64(), 1);
  }
  auto kinds = EventKinds(c, id);
  ASSERT_GE(kinds.size(), 3u);
  EXPECT_EQ(kinds.front(), "execution_created#0");
  EXPECT_EQ(kinds[1], "execution_started#0");
  EXPECT_EQ(kinds.back(), "execution_succeeded#0");
  // join was scheduled only after both branches succeeded.
  auto at = [&](const std::string& k) {
    return std::find(kinds.begin(), kinds.end(), k) - kinds.begin();
  };
  EXPECT_GT(at("step_scheduled:join#1"), at("step_succeeded:left#1"));
  EXPECT_GT(at("step_scheduled:join#1"), at("step_succeeded:right#1"));
  auto list = c.Do("GET", "/v1/executions?workflow=fan&status=succeeded");
  EXPECT_EQ(Json(*list).at("items").as_array().size(), 1u);
  auto metrics = c.Do("GET", "/metrics");
  EXPECT_NE(
      metrics->body.find(R"(drover_executions_started_total{tenant="default",workflow="fan"} 1)"),
      std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find(R"(drover_executions_ended_total{tenant="default",workflow="fan",)"
                               R"(status="succeeded"} 1)"),
            std::string::npos);
  // The read model rebuilt from the log is the same.
  auto rebuilt = c.Do("POST", "/v1/admin/rebuild");
  ASSERT_EQ(rebuilt->status, 200) << rebuilt->body;
  EXPECT_EQ(Json(*rebuilt).at("executions").as_int64(), 1);
  EXPECT_EQ(json::serialize(Get(c, id)), json::serialize(e));
}

TEST_P(Workflows, AWorkerThatDiesIsRetriedAndReportsAreIdempotent) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/work", R"({"visibility_timeout":"1s"})")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/one", R"({"steps":[
      {"name":"only","type":"task","queue":"work","retry":{"max_attempts":3}}]})")
                ->status,
            201);
  std::string id = Start(c, "one", "{}");
  // The first worker takes the task and dies (no report, no ack).
  ASSERT_TRUE(testing::WaitFor([&] { return WorkOnce(c, "work", nullptr, false) == 1; }));
  // After the visibility timeout another worker gets it: attempt 2.
  Handler ok = [](const json::object&) -> std::optional<std::string> { return "\"done\""; };
  ASSERT_TRUE(RunUntil(c, id, "work", "succeeded", ok));
  auto e = Get(c, id);
  EXPECT_EQ(e.at("steps").at(0).at("attempt").as_int64(), 2);
  size_t events = EventKinds(c, id).size();
  // The same completion again: no new event, answered with the execution as it is.
  auto again = c.Do("POST", "/v1/executions/" + id + "/steps/only/complete",
                    R"({"attempt":2,"output":"done"})");
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(EventKinds(c, id).size(), events);
  // A stale attempt is refused and changes nothing.
  auto stale = c.Do("POST", "/v1/executions/" + id + "/steps/only/complete",
                    R"({"attempt":1,"output":"late"})");
  EXPECT_EQ(stale->status, 409) << stale->body;
  EXPECT_EQ(EventKinds(c, id).size(), events);
  EXPECT_EQ(Get(c, id).at("output").as_string(), "done");
  // Reports naming nothing, or of the wrong shape.
  EXPECT_EQ(
      c.Do("POST", "/v1/executions/" + id + "/steps/nope/complete", R"({"attempt":1})")->status,
      404);
  EXPECT_EQ(
      c.Do("POST", "/v1/executions/" + id + "/steps/only/complete", R"({"attempt":0})")->status,
      422);
  EXPECT_EQ(c.Do("POST", "/v1/executions/" + id + "/steps/only/complete", R"({})")->status, 422);
}

TEST_P(Workflows, APoisonTaskFailsTheExecutionAndLandsInTheDeadLetterQueue) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/work-dlq", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/queues/work", R"({"dead_letter_queue":"work-dlq"})")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/poison", R"({"steps":[
      {"name":"boom","type":"task","queue":"work","retry":{"max_attempts":2,"backoff":"100ms"}}]})")
                ->status,
            201);
  std::string id = Start(c, "poison", R"("x")");
  Handler fail = [](const json::object&) -> std::optional<std::string> { return std::nullopt; };
  ASSERT_TRUE(RunUntil(c, id, "work", "failed", fail));
  auto e = Get(c, id);
  EXPECT_EQ(e.at("steps").at(0).at("attempt").as_int64(), 2);
  EXPECT_EQ(e.at("error").as_string(), "step boom failed: no luck");
  auto dlq = c.Do("GET", "/v1/queues/work-dlq");
  EXPECT_EQ(Json(*dlq).at("stats").at("visible").as_int64(), 1) << dlq->body;
  // Retry from the failed step: attempt 3 runs and succeeds.
  auto retried = c.Do("POST", "/v1/executions/" + id + "/retry");
  ASSERT_EQ(retried->status, 200) << retried->body;
  Handler ok = [](const json::object&) -> std::optional<std::string> { return "1"; };
  ASSERT_TRUE(RunUntil(c, id, "work", "succeeded", ok));
  EXPECT_EQ(Get(c, id).at("steps").at(0).at("attempt").as_int64(), 3);
  EXPECT_EQ(c.Do("POST", "/v1/executions/" + id + "/retry")->status, 409);
}

TEST_P(Workflows, SignalsSleepsIdempotencyConcurrencyAndCancel) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/approve", R"({"steps":[
      {"name":"nap","type":"sleep","duration":"200ms"},
      {"name":"ok","type":"wait","signal":"approved","timeout":"1m"}],
      "concurrency":{"key":"{{ input.user }}","max":1}})")
                ->status,
            201);
  std::string a = Start(c, "approve", R"({"user":"ann"})");
  std::string b = Start(c, "approve", R"({"user":"ann"})");
  std::string other = Start(c, "approve", R"({"user":"bob"})");
  // a sleeps then waits; b (same key) is held pending; bob's runs.
  ASSERT_TRUE(testing::WaitFor([&] {
    auto e = Get(c, a);
    return e.contains("steps") && e.at("steps").at(1).at("status") == "running";
  }));
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, other) == "running"; }));
  EXPECT_EQ(Status(c, b), "pending");
  // The signal ends a's wait with its payload as the step's output; b starts.
  auto sig =
      c.Do("POST", "/v1/executions/" + a + "/signals/approved", R"({"payload":{"by":"me"}})");
  ASSERT_EQ(sig->status, 200) << sig->body;
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, a) == "succeeded"; }));
  EXPECT_EQ(Get(c, a).at("output").at("by").as_string(), "me");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, b) == "running"; }));
  // Cancel ends b; a second cancel conflicts.
  auto cancel = c.Do("POST", "/v1/executions/" + b + "/cancel");
  ASSERT_EQ(cancel->status, 200) << cancel->body;
  EXPECT_EQ(Json(*cancel).at("status").as_string(), "cancelled");
  EXPECT_EQ(c.Do("POST", "/v1/executions/" + b + "/cancel")->status, 409);
  EXPECT_EQ(c.Do("POST", "/v1/executions/" + b + "/signals/approved")->status, 409);

  // Idempotency: the same key answers the first execution; another input is refused.
  auto first = c.Do("POST", "/v1/workflows/approve/executions", R"({"input":{"user":"cy"}})",
                    {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(first->status, 201);
  auto replay = c.Do("POST", "/v1/workflows/approve/executions", R"({"input":{"user":"cy"}})",
                     {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(replay->status, 201);
  EXPECT_EQ(Json(*replay).at("id"), Json(*first).at("id"));
  EXPECT_EQ(replay->Header("Idempotent-Replayed"), "true");
  auto differs = c.Do("POST", "/v1/workflows/approve/executions", R"({"input":{"user":"dee"}})",
                      {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(differs->status, 422) << differs->body;
  // A key that is not text is refused at the edge (PostgreSQL could not store it).
  auto bytes = c.Do("POST", "/v1/workflows/approve/executions", R"({"input":{"user":"eve"}})",
                    {{"Idempotency-Key", "k-\xff\xfe"}});
  EXPECT_EQ(bytes->status, 422) << bytes->body;
}

TEST_P(Workflows, HttpStepsRenderTemplatesRetryAndTimeOut) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  testing::FixedHttp hook;
  hook.Set({{"Content-Type", "application/json"}}, R"({"rows":7})");
  hook.FailNext({500});  // the first call fails; the retry succeeds
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/call",
                 R"({"steps":[
      {"name":"post","type":"http","method":"POST","url":")" +
                     hook.url("/hook/{{ input.id }}") +
                     R"(","body":{"id":"{{ input.id }}"},
       "headers":{"X-Run":"{{ input.id }}"},"retry":{"max_attempts":2,"backoff":"100ms"}}]})")
                ->status,
            201);
  std::string id = Start(c, "call", R"({"id":42})");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, id) == "succeeded"; }))
      << json::serialize(Get(c, id));
  auto e = Get(c, id);
  EXPECT_EQ(e.at("output").at("rows").as_int64(), 7);
  EXPECT_EQ(e.at("steps").at(0).at("attempt").as_int64(), 2);
  EXPECT_EQ(hook.requests(), 2);
  std::string req = hook.last_request();
  std::string lower = req;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_EQ(req.rfind("POST /hook/42 HTTP/1.1", 0), 0u) << req;
  EXPECT_NE(lower.find("x-run: 42"), std::string::npos) << req;
  EXPECT_NE(req.find(R"({"id":42})"), std::string::npos) << req;
  // The call is part of the execution's trace.
  std::string trace(e.at("trace_id").as_string());
  EXPECT_NE(lower.find("traceparent: 00-" + trace + "-"), std::string::npos) << req;
  auto kinds = EventKinds(c, id);
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "step_failed:post#1"), kinds.end());

  // A service slower than the step's timeout: the attempt fails, and with it the execution.
  testing::FixedHttp slow;
  slow.SetDelay(std::chrono::seconds(5));
  ASSERT_EQ(
      c.Do("PUT", "/v1/workflows/slow", OneHttpStep("wait-for-it", slow.url("/"), "1s"))->status,
      201);
  std::string late = Start(c, "slow", "null");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, late) == "failed"; }));
  EXPECT_NE(std::string(Get(c, late).at("error").as_string()).find("wait-for-it"),
            std::string::npos);
  // An input that would put a line break into the request (its URL and a header here) fails
  // the step; nothing is sent.
  int before = hook.requests();
  std::string bad = Start(c, "call", R"({"id":"42\r\nX-Evil: 1"})");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, bad) == "failed"; }));
  EXPECT_NE(std::string(Get(c, bad).at("error").as_string()).find("control character"),
            std::string::npos)
      << json::serialize(Get(c, bad));
  EXPECT_EQ(hook.requests(), before);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/hdr",
                 R"({"steps":[{"name":"h","type":"http","url":")" + hook.url("/fixed") +
                     R"(","headers":{"X-Run":"{{ input.h }}"}}]})")
                ->status,
            201);
  std::string hdr = Start(c, "hdr", R"({"h":"a\r\nX-Evil: 1"})");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, hdr) == "failed"; }));
  EXPECT_NE(std::string(Get(c, hdr).at("error").as_string()).find("header 'X-Run'"),
            std::string::npos)
      << json::serialize(Get(c, hdr));
  EXPECT_EQ(hook.requests(), before);
  // https is refused when the workflow is defined, not when it runs.
  auto tls = c.Do("PUT", "/v1/workflows/tls",
                  R"({"steps":[{"name":"a","type":"http","url":"https://example.com/"}]})");
  EXPECT_EQ(tls->status, 422);
}

TEST_P(Workflows, TopicsAndSchedulesStartExecutions) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/topics/orders", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/on-order", R"({"steps":[
      {"name":"nap","type":"sleep","duration":"10ms"}],"triggers":[{"topic":"orders"}]})")
                ->status,
            201);
  // Published twice with one dedup id: one execution, with the message as its input.
  for (int i = 0; i < 2; ++i) {
    auto pub = c.Do("POST", "/v1/topics/orders/messages",
                    R"({"body":"order 17","dedup_id":"o-17","attributes":{"kind":"new"}})");
    ASSERT_EQ(pub->status, 201) << pub->body;
    auto d = Json(*pub).at("messages").at(0).at("deliveries").as_array();
    ASSERT_EQ(d.size(), 1u) << pub->body;
    EXPECT_EQ(d[0].at("workflow").as_string(), "on-order");
    EXPECT_EQ(d[0].at("duplicate").as_bool(), i == 1);
  }
  auto list = [&](const std::string& wf) {
    auto r = c.Do("GET", "/v1/executions?workflow=" + wf);
    return r.ok() && r->status == 200 ? Json(*r).at("items").as_array() : json::array();
  };
  auto one = list("on-order");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].at("input").at("body").as_string(), "order 17");
  EXPECT_EQ(one[0].at("input").at("attributes").at("kind").as_string(), "new");
  std::string id(one[0].at("id").as_string());
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, id) == "succeeded"; }));
  // Without a dedup id every publish is a new execution.
  ASSERT_EQ(c.Do("POST", "/v1/topics/orders/messages", R"({"body":"order 18"})")->status, 201);
  EXPECT_EQ(list("on-order").size(), 2u);

  // A schedule's start_workflow action (a manual trigger: due now).
  auto sched = c.Do("PUT", "/v1/schedules/nightly", R"({"cron":"0 3 * * *",
      "action":{"type":"start_workflow","workflow":"on-order","input":{"from":"schedule"}}})");
  ASSERT_EQ(sched->status, 201) << sched->body;
  ASSERT_EQ(c.Do("POST", "/v1/schedules/nightly/trigger")->status, 202);
  ASSERT_TRUE(testing::WaitFor([&] {
    for (const auto& e : list("on-order")) {
      const auto& in = e.at("input");
      if (in.is_object() && in.as_object().contains("from") && e.at("status") == "succeeded") {
        return true;
      }
    }
    return false;
  }));
  // A workflow that does not exist: the firing fails, nothing is started.
  ASSERT_EQ(c.Do("PUT", "/v1/schedules/ghost", R"({"cron":"0 3 * * *",
      "action":{"type":"start_workflow","workflow":"ghost"}})")
                ->status,
            201);
  auto fired = c.Do("POST", "/v1/schedules/ghost/trigger");
  ASSERT_EQ(fired->status, 202);
  ASSERT_TRUE(testing::WaitFor([&] {
    auto f = c.Do("GET", "/v1/schedules/ghost/firings");
    if (!f.ok() || f->status != 200) return false;
    auto items = Json(*f).at("items").as_array();
    return !items.empty() && items[0].at("status") == "failed";
  }));
}

// The SSE stream of an execution delivers every event in order, live, and a reconnect with
// Last-Event-ID resumes after it; a blocking GET wakes on the next change.
TEST_P(Workflows, TheEventStreamDeliversEveryEventInOrderAndResumes) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/gate", R"({"steps":[
      {"name":"open","type":"wait","signal":"go"},{"name":"nap","type":"sleep","duration":"10ms"}]})")
                ->status,
            201);
  std::string id = Start(c, "gate", "null");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, id) == "running"; }));
  int port = testing::PortOf(s);
  auto open = [&](const std::string& extra) {
    int fd = testing::ConnectTo(port);
    EXPECT_TRUE(testing::WriteAll(
        fd, "GET /v1/executions/" + id + "/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                s.admin_key() + "\r\nAccept: text/event-stream\r\n" + extra + "\r\n"));
    return fd;
  };
  int fd = open("");
  std::string got;
  ASSERT_TRUE(testing::ReadUntil(fd, &got, "event: step_started")) << got;
  // A blocking read parked now wakes on the signal.
  auto first = c.Do("GET", "/v1/executions/" + id);
  std::string index = first->Header("X-Drover-Index");
  ASSERT_FALSE(index.empty());
  std::thread signaller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    (void)s.NewClient().Do("POST", "/v1/executions/" + id + "/signals/go", "{}");
  });
  auto woke = c.Do("GET", "/v1/executions/" + id + "?index=" + index + "&wait=20s");
  signaller.join();
  ASSERT_EQ(woke->status, 200);
  EXPECT_GT(std::stoll(woke->Header("X-Drover-Index")), std::stoll(index));
  ASSERT_TRUE(testing::ReadUntil(fd, &got, "event: execution_succeeded")) << got;
  close(fd);
  // Every event, ids 1..N in order.
  std::vector<int64_t> ids;
  for (size_t at = got.find("\nid: "); at != std::string::npos; at = got.find("\nid: ", at + 1)) {
    ids.push_back(std::stoll(got.substr(at + 5)));
  }
  auto all = EventKinds(c, id);
  ASSERT_EQ(ids.size(), all.size()) << got;
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int64_t>(i + 1));
  // Reconnecting after event 3 gets 4.. only.
  fd = open("Last-Event-ID: 3\r\n");
  std::string again;
  ASSERT_TRUE(testing::ReadUntil(fd, &again, "event: execution_succeeded")) << again;
  close(fd);
  EXPECT_EQ(again.find("\nid: 3\n"), std::string::npos) << again;
  EXPECT_NE(again.find("\nid: 4\n"), std::string::npos) << again;
  // Bad resume points are refused.
  EXPECT_EQ(c.Do("GET", "/v1/executions/" + id + "/events", "",
                 {{"Accept", "text/event-stream"}, {"Last-Event-ID", "x"}})
                ->status,
            400);
  EXPECT_EQ(c.Do("GET", "/v1/executions/" + id + "/events?after=-1")->status, 400);
}

// kill -9 of the server while clients submit executions as fast as they can: every execution
// answered 201 exists after the restart, and completes.
TEST_P(Workflows, Kill9UnderSubmissionsLosesNoAcceptedExecution) {
  TestServer s(DbArgs({"--rate-limit", "0", "--access-log", "false"}));
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/quick", R"({"steps":[
      {"name":"nap","type":"sleep","duration":"1ms"}]})")
                ->status,
            201);
  std::mutex mu;
  std::vector<std::string> accepted;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto k = s.NewClient();
      for (int i = 0; i < 5000 && !stop; ++i) {
        auto r = k.Do("POST", "/v1/workflows/quick/executions",
                      "{\"input\":" + std::to_string(t * 10000 + i) + "}");
        if (!r.ok()) return;  // the server is gone
        if (r->status == 201) {
          std::lock_guard lock(mu);
          accepted.emplace_back(json::parse(r->body).at("id").as_string());
        }
      }
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] {
    std::lock_guard lock(mu);
    return accepted.size() >= 1500;
  }));
  s.Kill();
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_TRUE(s.Start());
  auto after = s.NewClient();
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu);
    ids = accepted;
  }
  ASSERT_GE(ids.size(), 1500u);
  size_t missing = 0;
  for (const auto& id : ids) missing += after.Do("GET", "/v1/executions/" + id)->status != 200;
  EXPECT_EQ(missing, 0u) << "of " << ids.size() << " accepted";
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = after.Do("GET", "/v1/executions?workflow=quick&status=succeeded&limit=1000");
        auto p = after.Do("GET", "/v1/executions?workflow=quick&status=pending&limit=1");
        auto run = after.Do("GET", "/v1/executions?workflow=quick&status=running&limit=1");
        return r.ok() && p.ok() && run.ok() && Json(*p).at("items").as_array().empty() &&
               Json(*run).at("items").as_array().empty();
      },
      120000));
  for (size_t i = 0; i < ids.size(); i += 97) EXPECT_EQ(Status(after, ids[i]), "succeeded");
}

// A scale step sets an environment's capacity through the fleet's environments.
TEST_P(Workflows, AScaleStepSetsTheEnvironmentsCapacity) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  auto env =
      c.Do("PUT", "/v1/environments/sim",
           R"({"kind":"Environment","name":"sim","spec":{"provider":"static","capacity":1}})");
  ASSERT_EQ(env->status, 201) << env->body;
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/grow", R"({"steps":[
      {"name":"up","type":"scale","environment":"sim","capacity":"{{ input.to }}"},
      {"name":"missing","type":"scale","environment":"nowhere","capacity":1,"needs":[]}]})")
                ->status,
            201);
  std::string id = Start(c, "grow", R"({"to":4})");
  ASSERT_TRUE(testing::WaitFor([&] {
    auto e = Get(c, id);
    return e.contains("steps") && e.at("steps").at(0).at("status") == "succeeded";
  })) << json::serialize(Get(c, id));
  auto got = c.Do("GET", "/v1/environments/sim");
  EXPECT_EQ(Json(*got).at("scale_capacity").as_int64(), 4) << got->body;
  EXPECT_EQ(Json(*got).at("status").at("desired").as_int64(), 4) << got->body;
  // An environment that does not exist fails its step (and the execution), not the server.
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, id) == "failed"; }));
  EXPECT_NE(std::string(Get(c, id).at("error").as_string()).find("missing"), std::string::npos);
}

// A server stopping (SIGTERM) while an http step waits on a slow service stops at once: the call
// is interrupted, not waited for, and the step is not failed for it.
TEST_P(Workflows, AStoppingServerInterruptsHttpStepsUnderWay) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  testing::FixedHttp slow;
  slow.SetDelay(std::chrono::seconds(30));
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/hang", OneHttpStep("call", slow.url("/"), "5m"))->status,
            201);
  std::string id = Start(c, "hang", "null");
  ASSERT_TRUE(testing::WaitFor([&] { return slow.requests() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.Stop(), 0) << s.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  ASSERT_TRUE(s.Start());
  auto after = s.NewClient();
  auto e = Get(after, id);
  ASSERT_TRUE(e.contains("status")) << s.Log();
  EXPECT_EQ(e.at("status").as_string(), "running");
  EXPECT_EQ(e.at("steps").at(0).at("status").as_string(), "running");
}

// A running execution keeps the version it started with when the workflow changes; new ones
// take the new version.
TEST_P(Workflows, RunningExecutionsKeepTheirVersion) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/evolve",
                 R"({"steps":[{"name":"first","type":"wait","signal":"go"}]})")
                ->status,
            201);
  std::string old = Start(c, "evolve", "null");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, old) == "running"; }));
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/evolve",
                 R"({"steps":[{"name":"second","type":"sleep","duration":"10ms"}]})")
                ->status,
            200);
  std::string fresh = Start(c, "evolve", "null");
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, fresh) == "succeeded"; }));
  auto e = Get(c, fresh);
  EXPECT_EQ(e.at("version").as_int64(), 2);
  EXPECT_EQ(e.at("steps").at(0).at("name").as_string(), "second");
  e = Get(c, old);
  EXPECT_EQ(e.at("version").as_int64(), 1);
  EXPECT_EQ(e.at("steps").at(0).at("name").as_string(), "first");
  // Deleting the workflow leaves it running on its version, too.
  ASSERT_EQ(c.Do("DELETE", "/v1/workflows/evolve")->status, 204);
  ASSERT_EQ(c.Do("POST", "/v1/executions/" + old + "/signals/go", "{}")->status, 200);
  ASSERT_TRUE(testing::WaitFor([&] { return Status(c, old) == "succeeded"; }));
  EXPECT_EQ(c.Do("POST", "/v1/workflows/evolve/executions", "{}")->status, 404);
}

}  // namespace
}  // namespace drover
