// The request pipeline driven without sockets: auth, roles, routing errors, rate limits,
// request ids and metrics, on a real SQLite store.
#include "http/pipeline.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <future>

#include "api/app.h"
#include "control/cc_api.h"
#include "testing/faulty_store.h"
#include "testing/store_fixture.h"

namespace drover::http {
namespace {

class PipelineTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void Init(PipelineOptions opts = {}, const std::string& db = "p.db") {
    app_.reset();
    faulty_.reset();
    store_.reset();
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, db));
    ASSERT_TRUE(store_);
    faulty_ = std::make_unique<testing::FaultyStore>(*store_);
    app_ = std::make_unique<api::App>(*faulty_, SystemClock::Get(), opts);
    auto boot = app_->keys().Bootstrap(std::string(kAdmin));
    ASSERT_TRUE(boot.ok());
  }
  void SetUp() override { Init(); }

  Response Call(Method m, std::string target, std::string_view token, std::string body = "",
                std::vector<std::pair<std::string_view, std::string_view>> headers = {}) {
    // Locals, not members: several calls may run at once (blocking reads).
    std::string target_copy = std::move(target), auth;
    Request req;
    req.method = m;
    req.target = target_copy;
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string_view::npos) req.query = req.target.substr(q + 1);
    auth = "Bearer " + std::string(token);
    if (!token.empty()) req.headers.emplace_back("Authorization", auth);
    for (auto& h : headers) req.headers.push_back(h);
    req.body = std::move(body);
    Responder responder;
    std::promise<void> ready;
    int route = -1;
    app_->pipeline().Dispatch(req, responder, &route);
    responder.OnReady([&] { ready.set_value(); });
    ready.get_future().get();
    Response r = responder.Take();
    app_->pipeline().Finish(req, route, r, 0.001);
    return r;
  }
  // A header of the response, from its list or its prepared lines (extra_headers).
  std::string Header(const Response& r, std::string_view name) {
    for (auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    std::string_view lines = r.extra_headers ? std::string_view(*r.extra_headers) : "";
    while (!lines.empty()) {
      auto end = lines.find("\r\n");
      std::string_view line = lines.substr(0, end);
      lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 2);
      auto colon = line.find(": ");
      if (colon != std::string_view::npos && line.substr(0, colon) == name) {
        return std::string(line.substr(colon + 2));
      }
    }
    return "";
  }
  std::string NewKey(std::string role, std::string tenant = "default", std::string extra = "") {
    auto r =
        Call(Method::kPost, "/v1/keys", kAdmin,
             R"({"name":"k","role":")" + role + R"(","tenant":")" + tenant + "\"" + extra + "}");
    EXPECT_EQ(r.status, 201) << r.body;
    auto k = r.body.find("\"key\":\"");
    return r.body.substr(k + 7, r.body.find('"', k + 7) - k - 7);
  }

  static constexpr std::string_view kAdmin = "pipeline-test-admin-key";
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<testing::FaultyStore> faulty_;
  std::unique_ptr<api::App> app_;
};

DROVER_ON_ALL_BACKENDS(PipelineTest);

TEST_P(PipelineTest, PublicRoutesNeedNoKey) {
  EXPECT_EQ(Call(Method::kGet, "/healthz", "").status, 200);
  EXPECT_EQ(Call(Method::kGet, "/readyz", "").status, 200);
  auto m = Call(Method::kGet, "/metrics", "");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

// Which requests the transport may run on its I/O thread although a store pool exists: a
// write-only route (PUT /v1/variables/{key}) with a key already verified; never a read route,
// never an unknown or uncached key (its lookup reads the store).
TEST_P(PipelineTest, OnlyWriteOnlyRoutesWithACachedKeyRunFromMemory) {
  std::string key = NewKey("user");
  auto runs_from_memory = [&](Method m, std::string path, std::string_view token) {
    Request req;
    req.method = m;
    req.path = path;
    std::string auth = "Bearer " + std::string(token);
    req.headers.emplace_back("Authorization", auth);
    Match match = app_->pipeline().Lookup(req);
    const Route* route = app_->pipeline().RouteOf(match);
    EXPECT_NE(route, nullptr) << path;
    return route && app_->pipeline().RunsFromMemory(req, *route);
  };
  EXPECT_FALSE(runs_from_memory(Method::kPut, "/v1/variables/a", key)) << "not verified yet";
  ASSERT_EQ(Call(Method::kPut, "/v1/variables/a", key, R"({"value":"1"})").status, 201);
  EXPECT_TRUE(runs_from_memory(Method::kPut, "/v1/variables/a", key));
  EXPECT_TRUE(runs_from_memory(Method::kDelete, "/v1/variables/a", key));
  // The caller comes with it: Admit does not look the key up a second time.
  Request put;
  put.method = Method::kPut;
  put.path = "/v1/variables/a";
  std::string auth = "Bearer " + key;
  put.headers.emplace_back("Authorization", auth);
  Match m = app_->pipeline().Lookup(put);
  ASSERT_TRUE(app_->pipeline().RunsFromMemory(put, *app_->pipeline().RouteOf(m)));
  ASSERT_TRUE(put.principal);
  EXPECT_EQ(put.principal->role, http::Role::kUser);
  EXPECT_FALSE(runs_from_memory(Method::kGet, "/v1/variables/a", key)) << "reads the store";
  EXPECT_FALSE(runs_from_memory(Method::kPut, "/v1/variables/a", "drv_made-up")) << "unknown";
  EXPECT_TRUE(runs_from_memory(Method::kGet, "/healthz", "")) << "public, never blocks";
  EXPECT_FALSE(runs_from_memory(Method::kGet, "/readyz", "")) << "public, reads the store";
}

TEST_P(PipelineTest, MissingOrBadKeyIs401) {
  auto r = Call(Method::kGet, "/v1/status", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.content_type, "application/problem+json");
  EXPECT_EQ(Header(r, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(Call(Method::kGet, "/v1/status", "drv_wrong").status, 401);
  EXPECT_EQ(Call(Method::kGet, "/v1/status", kAdmin).status, 200);
}

TEST_P(PipelineTest, ViewerMayReadButNotWrite) {
  std::string viewer = NewKey("viewer");
  EXPECT_EQ(Call(Method::kGet, "/v1/variables", viewer).status, 200);
  auto w = Call(Method::kPut, "/v1/variables/x", viewer, R"({"value":"1"})");
  EXPECT_EQ(w.status, 403);
  EXPECT_NE(w.body.find("read-only"), std::string::npos);
}

TEST_P(PipelineTest, AgentKeysOnlyReachAgentEndpoints) {
  std::string agent = NewKey("agent");
  EXPECT_EQ(Call(Method::kGet, "/v1/variables", agent).status, 403);
  EXPECT_EQ(Call(Method::kGet, "/v1/openapi.json", agent).status, 200);
}

TEST_P(PipelineTest, NotFoundAndMethodNotAllowedAreProblems) {
  auto nf = Call(Method::kGet, "/v1/nope", kAdmin);
  EXPECT_EQ(nf.status, 404);
  EXPECT_NE(nf.body.find("\"status\":404"), std::string::npos);
  auto na = Call(Method::kPost, "/v1/variables/x", kAdmin);
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(Header(na, "Allow"), "PUT, GET, DELETE");
}

TEST_P(PipelineTest, RequestIdIsEchoedOrMinted) {
  auto echoed = Call(Method::kGet, "/healthz", "", "", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(Header(echoed, "X-Request-Id"), "abc-123");
  auto minted = Call(Method::kGet, "/healthz", "", "", {{"X-Request-Id", "bad id\n"}});
  EXPECT_FALSE(Header(minted, "X-Request-Id").empty());
  EXPECT_NE(Header(minted, "X-Request-Id"), "bad id\n");
  auto other = Call(Method::kGet, "/healthz", "");
  EXPECT_NE(Header(other, "X-Request-Id"), Header(minted, "X-Request-Id"));
}

TEST_P(PipelineTest, PerKeyRateLimitAnswers429WithRetryAfter) {
  // rps 1, burst 2: at most 2 + (seconds elapsed) requests pass. Counted against the time it
  // really took, so a slow machine cannot make this fail or pass by accident.
  std::string limited = NewKey("user", "default", R"(,"rate_limit":{"rps":1,"burst":2})");
  auto start = std::chrono::steady_clock::now();
  int ok = 0;
  Response last;
  for (int i = 0; i < 6; ++i) {
    last = Call(Method::kGet, "/v1/status", limited);
    if (last.status == 200) ++ok;
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(ok, 2 + static_cast<int>(std::ceil(elapsed)));
  if (elapsed < 1.0) {
    EXPECT_EQ(ok, 2);
    EXPECT_EQ(last.status, 429);
    EXPECT_EQ(Header(last, "Retry-After"), "1");
  }
  EXPECT_EQ(Call(Method::kGet, "/v1/status", kAdmin).status, 200) << "admin keys are unlimited";
}

TEST_P(PipelineTest, ServerDefaultRateLimitAppliesToNonAdminKeys) {
  Init({.default_rps = 0.001,
        .default_burst = 1,
        .access_log = false,
        .on_refused = nullptr,
        .dashboard_session = nullptr},
       "limited.db");
  std::string user = NewKey("user");
  EXPECT_EQ(Call(Method::kGet, "/v1/status", user).status, 200);
  EXPECT_EQ(Call(Method::kGet, "/v1/status", user).status, 429);
  EXPECT_EQ(Call(Method::kGet, "/v1/status", kAdmin).status, 200);
}

TEST_P(PipelineTest, StorageTroubleIs503WithRetryAfterAndLosesNothing) {
  ASSERT_EQ(Call(Method::kPut, "/v1/variables/a", kAdmin, R"({"value":"1"})").status, 201);
  faulty_->fail_writes = true;
  auto w = Call(Method::kPut, "/v1/variables/a", kAdmin, R"({"value":"2"})");
  EXPECT_EQ(w.status, 503);
  EXPECT_EQ(Header(w, "Retry-After"), "1");
  EXPECT_EQ(w.content_type, "application/problem+json");
  faulty_->fail_writes = false;
  auto r = Call(Method::kGet, "/v1/variables/a", kAdmin);
  EXPECT_NE(r.body.find("\"value\":\"1\""), std::string::npos)
      << "the refused write changed nothing";

  faulty_->fail_reads = true;
  EXPECT_EQ(Call(Method::kGet, "/v1/variables/a", kAdmin).status, 503);
  faulty_->fail_reads = false;

  faulty_->fail_ping = true;
  auto ready = Call(Method::kGet, "/readyz", "");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(Header(ready, "Retry-After"), "1");
  EXPECT_EQ(Call(Method::kGet, "/healthz", "").status, 200) << "the process itself is fine";
  faulty_->fail_ping = false;
  EXPECT_EQ(Call(Method::kGet, "/readyz", "").status, 200);
}

TEST_P(PipelineTest, MetricsCountRequestsByRouteAndStatus) {
  Call(Method::kGet, "/v1/status", kAdmin);
  Call(Method::kGet, "/v1/status", "");
  std::string out = app_->metrics().Render();
  EXPECT_NE(
      out.find("drover_http_requests_total{route=\"/v1/status\",method=\"GET\",status=\"200\"} 1"),
      std::string::npos)
      << out;
  EXPECT_NE(
      out.find("drover_http_requests_total{route=\"/v1/status\",method=\"GET\",status=\"401\"} 1"),
      std::string::npos);
}

TEST_P(PipelineTest, BlockingReadWaitsForAChangeThenAnswersWithTheNewIndex) {
  ASSERT_EQ(Call(Method::kPut, "/v1/variables/cc-a-ref", kAdmin, R"({"value":"v1"})").status, 201);
  auto first = Call(Method::kGet, "/v1/variables?prefix=cc-a-", kAdmin);
  std::string index = Header(first, "X-Drover-Index");
  ASSERT_FALSE(index.empty());
  // Parks: nothing changed after `index`.
  auto waiting = std::async(std::launch::async, [&] {
    return Call(Method::kGet, "/v1/variables?prefix=cc-a-&index=" + index + "&wait=30s", kAdmin);
  });
  ASSERT_TRUE(testing::WaitFor([&] { return app_->waiters().parked() == 1; }));
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  ASSERT_EQ(Call(Method::kPut, "/v1/variables/cc-a-ref", kAdmin, R"({"value":"v2"})").status, 200);
  auto woke = waiting.get();
  EXPECT_EQ(woke.status, 200);
  EXPECT_NE(woke.body.find("\"v2\""), std::string::npos) << woke.body;
  EXPECT_GT(std::stoll(Header(woke, "X-Drover-Index")), std::stoll(index));
  // A single variable blocks the same way; an index already passed answers at once.
  auto at_once = Call(Method::kGet, "/v1/variables/cc-a-ref?index=0&wait=30s", kAdmin);
  EXPECT_EQ(at_once.status, 200);
}

TEST_P(PipelineTest, BlockingReadEndsWithItsWaitAndRejectsBadParameters) {
  ASSERT_EQ(Call(Method::kPut, "/v1/variables/k", kAdmin, R"({"value":"v"})").status, 201);
  std::string index = Header(Call(Method::kGet, "/v1/variables/k", kAdmin), "X-Drover-Index");
  auto r = Call(Method::kGet, "/v1/variables/k?index=" + index + "&wait=1s", kAdmin);
  EXPECT_EQ(r.status, 200);  // nothing changed: the wait ran out, same data, same index
  EXPECT_EQ(Header(r, "X-Drover-Index"), index);
  for (std::string bad : {"index=-1", "index=abc", "index=1&wait=soon", "index=1&wait=0s"}) {
    auto b = Call(Method::kGet, "/v1/variables?" + bad, kAdmin);
    EXPECT_EQ(b.status, 400) << bad;
    EXPECT_NE(b.body.find(bad.find("wait") != std::string::npos ? "'wait'" : "'index'"),
              std::string::npos)
        << b.body;
  }
}

TEST_P(PipelineTest, ShutdownAnswersParkedReads) {
  std::string index = Header(Call(Method::kGet, "/v1/variables", kAdmin), "X-Drover-Index");
  auto waiting = std::async(std::launch::async, [&] {
    return Call(Method::kGet, "/v1/variables?index=" + index + "&wait=5m", kAdmin);
  });
  ASSERT_TRUE(testing::WaitFor([&] { return app_->waiters().parked() == 1; }));
  app_->waiters().Shutdown();
  EXPECT_EQ(waiting.get().status, 200);
}

TEST_P(PipelineTest, ReadsCarryAnETagAndIfNoneMatchAnswers304WhileUnchanged) {
  ASSERT_EQ(Call(Method::kPut, "/v1/variables/cc-a-ref", kAdmin, R"({"value":"v1"})").status, 201);
  for (std::string target : {"/v1/variables/cc-a-ref", "/v1/variables?prefix=cc-a-"}) {
    auto first = Call(Method::kGet, target, kAdmin);
    std::string etag = Header(first, "ETag");
    EXPECT_EQ(etag, "\"" + Header(first, "X-Drover-Index") + "\"") << target;
    auto same = Call(Method::kGet, target, kAdmin, "", {{"If-None-Match", etag}});
    EXPECT_EQ(same.status, 304) << target;
    EXPECT_TRUE(same.body.empty());
    EXPECT_EQ(Header(same, "ETag"), etag);
    auto other = Call(Method::kGet, target, kAdmin, "", {{"If-None-Match", "\"1234567\""}});
    EXPECT_EQ(other.status, 200) << target;
  }
  std::string etag = Header(Call(Method::kGet, "/v1/variables/cc-a-ref", kAdmin), "ETag");
  ASSERT_EQ(Call(Method::kPut, "/v1/variables/cc-a-ref", kAdmin, R"({"value":"v2"})").status, 200);
  auto changed =
      Call(Method::kGet, "/v1/variables/cc-a-ref", kAdmin, "", {{"If-None-Match", etag}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_NE(Header(changed, "ETag"), etag);
  EXPECT_NE(changed.body.find("\"v2\""), std::string::npos);
}

TEST_P(PipelineTest, AgentViewIsTheEffectiveSetAsJsonAndHeaders) {
  auto put = [&](std::string key, std::string value, std::string env = "") {
    std::string body =
        R"({"value":)" + value + (env.empty() ? "" : R"(,"environment":")" + env + "\"") + "}";
    auto r = Call(Method::kPut, "/v1/variables/" + key, kAdmin, body);
    ASSERT_TRUE(r.status == 200 || r.status == 201) << key << " " << r.body;
  };
  put("cc-a-ref", R"("main")");
  put("cc-a-type", R"("shell")");
  put("cc-a-interval", R"("600")");
  put("cc-a-main-run", R"("make\nmake install")");
  put("cc-w-scheduler", R"("*/10 * * * *")");
  put("unrelated", R"("x")");
  put("cc-a-ref", R"("eu")", "sim-eu");
  put("cc-a-type", R"("-")", "sim-eu");  // unsets the global value in this environment
  std::string agent = NewKey("agent");

  auto eu = Call(Method::kGet, "/v1/cc/agent?environment=sim-eu", agent);
  ASSERT_EQ(eu.status, 200) << eu.body;
  EXPECT_EQ(eu.body,
            R"({"cc-a-interval":"600","cc-a-main-run":"make\nmake install","cc-a-ref":"eu"})");
  EXPECT_EQ(Header(eu, "cc-a-ref"), "eu");
  EXPECT_EQ(Header(eu, "cc-a-interval"), "600");
  EXPECT_EQ(Header(eu, "cc-a-type"), "") << "unset in the environment";
  EXPECT_EQ(Header(eu, "cc-a-main-run"), "") << "a newline cannot be a header value: body only";
  EXPECT_FALSE(Header(eu, "ETag").empty());

  auto global = Call(Method::kGet, "/v1/cc/agent", agent);
  EXPECT_EQ(global.body,
            R"({"cc-a-interval":"600","cc-a-main-run":"make\nmake install","cc-a-ref":"main",)"
            R"("cc-a-type":"shell"})");
  auto watcher = Call(Method::kGet, "/v1/cc/watcher?environment=sim-eu", agent);
  EXPECT_EQ(watcher.body, R"({"cc-w-scheduler":"*/10 * * * *"})");
  EXPECT_EQ(Header(watcher, "cc-w-scheduler"), "*/10 * * * *");
  EXPECT_EQ(Call(Method::kGet, "/v1/cc/agent?environment=Bad_Env", agent).status, 400);
  EXPECT_EQ(Call(Method::kGet, "/v1/cc/agent", "").status, 401);
}

TEST(ControlCenter, HeaderSafeValues) {
  EXPECT_TRUE(control::IsHeaderSafe("https://github.com/example/sim.git"));
  EXPECT_TRUE(control::IsHeaderSafe(R"({"all":3,"aws":{"all":2}})"));  // JSON with quotes is fine
  EXPECT_TRUE(control::IsHeaderSafe(""));
  EXPECT_FALSE(control::IsHeaderSafe("a\nb"));
  EXPECT_FALSE(control::IsHeaderSafe("a\rb"));
  EXPECT_FALSE(control::IsHeaderSafe(std::string("a\0b", 3)));
  EXPECT_FALSE(control::IsHeaderSafe(" padded"));
  EXPECT_FALSE(control::IsHeaderSafe(std::string(9000, 'x')));
}

}  // namespace
}  // namespace drover::http
