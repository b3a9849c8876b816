// A real drover server process: the tour of the API over loopback HTTP.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::TestServer;

boost::json::value Json(const client::Response& r) { return boost::json::parse(r.body); }

class Server : public testing::BackendTest {};
DROVER_ON_ALL_BACKENDS(Server);

TEST_P(Server, HealthReadyMetricsAndStatus) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  auto h = c.Do("GET", "/healthz");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->status, 200);
  EXPECT_FALSE(h->Header("X-Request-Id").empty());
  EXPECT_EQ(c.Do("GET", "/readyz")->status, 200);
  auto st = c.Do("GET", "/v1/status");
  ASSERT_EQ(st->status, 200);
  auto v = Json(*st);
  EXPECT_EQ(v.at("backend").as_string(),
            GetParam() == testing::Backend::kSqlite ? "sqlite" : "postgres");
  EXPECT_EQ(v.at("version").as_string(), DROVER_VERSION);
  auto m = c.Do("GET", "/metrics");
  EXPECT_NE(m->body.find(
                "drover_http_requests_total{route=\"/v1/status\",method=\"GET\",status=\"200\"} 1"),
            std::string::npos)
      << m->body;
  // Who is asking: the dashboard shows the actions of the caller's role.
  EXPECT_EQ(v.at("caller").at("role").as_string(), "admin");
  EXPECT_EQ(v.at("caller").at("tenant").as_string(), "default");
  auto api = client::Client({s.addr(), ""}).Do("GET", "/v1/openapi.json");
  EXPECT_EQ(api->status, 200) << "the API description needs no key";
  EXPECT_EQ(Json(*api).at("openapi").as_string(), "3.1.0");
  EXPECT_EQ(s.Stop(), 0);
}

// The dashboard's files: no key needed (the page asks for one), the page revalidated, hashed
// files cached for good, gzip when accepted, page routes answered with the page, a strict CSP.
TEST_P(Server, TheDashboardIsServedFromTheBinary) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  client::Client anon({s.addr(), ""});
  for (std::string path : {"/ui", "/ui/", "/ui/environments/web"}) {
    auto page = anon.Do("GET", path);
    ASSERT_EQ(page->status, 200) << path;
    EXPECT_EQ(page->Header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(page->Header("Cache-Control"), "no-cache");
    EXPECT_NE(page->Header("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
    EXPECT_EQ(page->Header("X-Frame-Options"), "DENY");
    EXPECT_NE(page->body.find("<div id=\"app\">"), std::string::npos);
  }
  auto page = anon.Do("GET", "/ui/");
  size_t at = page->body.find("/ui/app-");
  ASSERT_NE(at, std::string::npos);
  std::string script = page->body.substr(at, page->body.find('"', at) - at);
  auto js = anon.Do("GET", script);
  ASSERT_EQ(js->status, 200);
  EXPECT_EQ(js->Header("Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_TRUE(js->Header("Content-Encoding").empty()) << "gzip only when asked for";
  auto gz = anon.Do("GET", script, "", {{"Accept-Encoding", "gzip, br"}});
  EXPECT_EQ(gz->Header("Content-Encoding"), "gzip");
  EXPECT_LT(gz->body.size(), js->body.size() / 2);
  EXPECT_EQ(gz->body.substr(0, 2), "\x1f\x8b");
  auto refused = anon.Do("GET", script, "", {{"Accept-Encoding", "br, gzip;q=0"}});
  EXPECT_TRUE(refused->Header("Content-Encoding").empty()) << "gzip;q=0 refuses it";
  EXPECT_EQ(refused->body, js->body);
  auto again = anon.Do("GET", script, "", {{"If-None-Match", js->Header("ETag")}});
  EXPECT_EQ(again->status, 304);
  EXPECT_TRUE(again->body.empty());
  EXPECT_EQ(anon.Do("GET", "/ui/no-such-file.js")->status, 404);
  // Files come from a table in the binary: a path that climbs only names a page route.
  auto climb = anon.Do("GET", "/ui/../v1/status");
  EXPECT_NE(climb->body.find("<div id=\"app\">"), std::string::npos) << climb->body;
  EXPECT_EQ(anon.Do("POST", "/ui/")->status, 405);
}

// `drover ui`: a single-use code traded for an HttpOnly cookie for /v1/ that acts as the key
// that opened it, and only on requests with the page's header (a cross-site form cannot send
// one); signing out ends it on the server.
TEST_P(Server, TheDashboardSessionActsAsItsKeyOnlyWithThePagesHeader) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto admin = s.NewClient();
  auto made = admin.Do("POST", "/v1/keys", R"({"name":"watcher","role":"viewer"})");
  ASSERT_EQ(made->status, 201) << made->body;
  auto viewer = s.NewClient(std::string(Json(*made).at("key").as_string()));
  auto open = viewer.Do("POST", "/v1/ui/open");
  ASSERT_EQ(open->status, 201) << open->body;
  std::string url(Json(*open).at("url").as_string());
  ASSERT_TRUE(url.starts_with("/ui/?drover_code=")) << url;

  client::Client browser({s.addr(), ""});
  auto login = browser.Do("GET", url);
  ASSERT_EQ(login->status, 303) << login->body;
  EXPECT_EQ(login->Header("Set-Cookie").find("Secure"), std::string::npos) << "plain HTTP";
  EXPECT_EQ(login->Header("Location"), "/ui/");
  std::string cookie = login->Header("Set-Cookie");
  for (std::string part : {"drover_ui=", "Path=/v1/", "HttpOnly", "SameSite=Strict"}) {
    EXPECT_NE(cookie.find(part), std::string::npos) << cookie;
  }
  std::string session = cookie.substr(0, cookie.find(';'));
  EXPECT_EQ(browser.Do("GET", url)->status, 401) << "a code is used once";
  auto active = [&](std::vector<std::pair<std::string, std::string>> headers) {
    auto r = browser.Do("GET", "/v1/ui/session", "", std::move(headers));
    EXPECT_EQ(r->status, 200) << r->body;
    return r->status == 200 && Json(*r).at("active").as_bool();
  };
  EXPECT_TRUE(active({{"Cookie", session}, {"X-Drover-UI", "1"}}));
  EXPECT_FALSE(active({{"Cookie", session}}));
  EXPECT_FALSE(active({{"X-Drover-UI", "1"}}));

  std::vector<std::pair<std::string, std::string>> page{{"Cookie", "theme=dark; " + session},
                                                        {"X-Drover-UI", "1"}};
  auto status = browser.Do("GET", "/v1/status", "", page);
  ASSERT_EQ(status->status, 200) << status->body;
  EXPECT_EQ(Json(*status).at("caller").at("name").as_string(), "watcher");
  EXPECT_EQ(browser.Do("PUT", "/v1/variables/x", R"({"value":"1"})", page)->status, 403)
      << "the session has its key's role";
  // The cookie alone, as a cross-site form would send it, opens nothing.
  auto bare = browser.Do("GET", "/v1/status", "", {{"Cookie", session}});
  EXPECT_EQ(bare->status, 401) << bare->body;
  EXPECT_EQ(
      browser.Do("GET", "/v1/status", "", {{"Cookie", "drover_ui=forged"}, {"X-Drover-UI", "1"}})
          ->status,
      401);
  EXPECT_EQ(browser.Do("GET", "/ui/?drover_code=nonsense")->status, 401);

  EXPECT_EQ(browser.Do("DELETE", "/v1/ui/session", "", {{"Cookie", session}})->status, 403);
  auto out = browser.Do("DELETE", "/v1/ui/session", "", page);
  ASSERT_EQ(out->status, 204) << out->body;
  EXPECT_NE(out->Header("Set-Cookie").find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(browser.Do("GET", "/v1/status", "", page)->status, 401) << "signed out";
  EXPECT_FALSE(active(page));
  EXPECT_EQ(browser.Do("DELETE", "/v1/ui/session", "", page)->status, 204) << "twice is fine";
  // Behind an HTTPS proxy that says so, the cookie is Secure.
  auto again = viewer.Do("POST", "/v1/ui/open");
  std::string code_url(Json(*again).at("url").as_string());
  auto tls = browser.Do("GET", code_url, "", {{"X-Forwarded-Proto", "https"}});
  ASSERT_EQ(tls->status, 303);
  EXPECT_NE(tls->Header("Set-Cookie").find("; Secure"), std::string::npos);
  EXPECT_EQ(s.Stop(), 0);
}

TEST_P(Server, VariablesCrudWithIndex) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  auto put = c.Do("PUT", "/v1/variables/cc-a-ref", R"({"value":"main"})");
  ASSERT_EQ(put->status, 201) << put->body;
  int64_t i1 = std::stoll(put->Header("X-Drover-Index"));
  auto again = c.Do("PUT", "/v1/variables/cc-a-ref", R"({"value":"v2"})");
  ASSERT_EQ(again->status, 200);
  EXPECT_GT(std::stoll(again->Header("X-Drover-Index")), i1);
  auto scoped = c.Do("PUT", "/v1/variables/cc-a-ref", R"({"value":"eu","environment":"sim-eu"})");
  ASSERT_EQ(scoped->status, 201);

  auto get = c.Do("GET", "/v1/variables/cc-a-ref");
  ASSERT_EQ(get->status, 200);
  EXPECT_EQ(Json(*get).at("value").as_string(), "v2");
  EXPECT_TRUE(Json(*get).at("environment").is_null());
  auto geteu = c.Do("GET", "/v1/variables/cc-a-ref?environment=sim-eu");
  EXPECT_EQ(Json(*geteu).at("value").as_string(), "eu");
  auto head = c.Do("HEAD", "/v1/variables/cc-a-ref");
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());

  auto list = c.Do("GET", "/v1/variables?prefix=cc-a-");
  auto items = Json(*list).at("items").as_array();
  EXPECT_EQ(items.size(), 2u);

  auto del = c.Do("DELETE", "/v1/variables/cc-a-ref?environment=sim-eu");
  EXPECT_EQ(del->status, 204);
  EXPECT_EQ(c.Do("GET", "/v1/variables/cc-a-ref?environment=sim-eu")->status, 404);
  EXPECT_EQ(c.Do("DELETE", "/v1/variables/cc-a-ref?environment=sim-eu")->status, 404);
}

TEST_P(Server, AgentViewOverHttpGetAndHead) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/variables/cc-a-repository",
                 R"({"value":"https://github.com/example/sim.git"})")
                ->status,
            201);
  ASSERT_EQ(
      c.Do("PUT", "/v1/variables/cc-a-ref", R"({"value":"release-2","environment":"sim"})")->status,
      201);
  auto get = c.Do("GET", "/v1/cc/agent?environment=sim");
  ASSERT_EQ(get->status, 200);
  EXPECT_EQ(get->body,
            R"({"cc-a-ref":"release-2","cc-a-repository":"https://github.com/example/sim.git"})");
  auto head = c.Do("HEAD", "/v1/cc/agent?environment=sim");
  ASSERT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->Header("cc-a-ref"), "release-2");
  EXPECT_EQ(head->Header("cc-a-repository"), "https://github.com/example/sim.git");
  EXPECT_EQ(head->Header("ETag"), get->Header("ETag"));
}

TEST_P(Server, AgentViewIndexMovesOnlyWhenItsSetChanges) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/environments/web",
                 R"({"provider":"static","agent":{"ref":"main","main_run":"./run.sh"}})")
                ->status,
            201);
  // The environment's agent: block is under its own variables, over the global ones.
  ASSERT_EQ(c.Do("PUT", "/v1/variables/cc-a-ref", R"({"value":"global"})")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/variables/cc-a-delay", R"({"value":"7"})")->status, 201);
  auto v1 = c.Do("GET", "/v1/cc/agent?environment=web");
  EXPECT_EQ(v1->body, R"({"cc-a-delay":"7","cc-a-main-run":"./run.sh","cc-a-ref":"main"})");
  ASSERT_EQ(
      c.Do("PUT", "/v1/variables/cc-a-ref", R"({"value":"pinned","environment":"web"})")->status,
      201);
  auto v2 = c.Do("GET", "/v1/cc/agent?environment=web");
  EXPECT_EQ(v2->body, R"({"cc-a-delay":"7","cc-a-main-run":"./run.sh","cc-a-ref":"pinned"})");
  EXPECT_GT(std::stoll(v2->Header("X-Drover-Index")), std::stoll(v1->Header("X-Drover-Index")));
  // Unrelated writes move the store's index, not the view's.
  ASSERT_EQ(c.Do("PUT", "/v1/variables/user-var", R"({"value":"x"})")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/environments/other", R"({"provider":"static"})")->status, 201);
  auto v3 =
      c.Do("GET", "/v1/cc/agent?environment=web", "", {{"If-None-Match", v2->Header("ETag")}});
  EXPECT_EQ(v3->status, 304);
  EXPECT_EQ(v3->Header("X-Drover-Index"), v2->Header("X-Drover-Index"));
  // A blocking read at the view's index waits out its wait; at an older one it answers at once.
  auto t0 = std::chrono::steady_clock::now();
  auto waited = c.Do(
      "GET", "/v1/cc/agent?environment=web&index=" + v2->Header("X-Drover-Index") + "&wait=300ms");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(290));
  EXPECT_EQ(waited->Header("X-Drover-Index"), v2->Header("X-Drover-Index"));
  auto at_once = c.Do(
      "GET", "/v1/cc/agent?environment=web&index=" + v1->Header("X-Drover-Index") + "&wait=60s");
  EXPECT_EQ(at_once->body, v2->body);
}

TEST_P(Server, EnvironmentLifecycleOverHttp) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  std::string yaml =
      "kind: Environment\nname: sim\nspec:\n  provider: static\n  capacity: 1\n"
      "  health: {heartbeat_interval: 2s}\n";
  auto created = c.Do("PUT", "/v1/environments/sim", yaml, {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(created->status, 201) << created->body;
  auto again = c.Do("PUT", "/v1/environments/sim", yaml, {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(again->status, 200);
  EXPECT_EQ(Json(*again).at("spec").at("health").at("heartbeat_interval").as_string(), "2s");
  EXPECT_FALSE(Json(*again).as_object().contains("join_token")) << "shown on creation only";
  std::string token(Json(*created).at("join_token").as_string());
  auto env = Json(*c.Do("GET", "/v1/environments/sim"));
  EXPECT_EQ(env.at("status").at("phase").as_string(), "pending");
  EXPECT_EQ(env.at("status").at("join_token").as_string(), token);
  std::string index = c.Do("GET", "/v1/environments/sim")->Header("X-Drover-Index");
  // A blocking read of the environment wakes on the join and sees the instance. (A wake-up may
  // be early — another write passed the index, as with Consul — and the client asks again with
  // the newer index, as clients do.)
  std::promise<client::Response> got;
  std::thread reader([&] {
    auto rc = s.NewClient();
    std::string at = index;
    for (int i = 0; i < 20; ++i) {
      auto r = *rc.Do("GET", "/v1/environments/sim?index=" + at + "&wait=60s");
      if (i == 19 || Json(r).at("status").at("instances").as_array().size() == 1) {
        got.set_value(r);
        return;
      }
      at = r.Header("X-Drover-Index");
    }
  });
  client::Client joiner({s.addr(), token});
  auto j =
      joiner.Do("POST", "/v1/environments/sim/join", R"({"hostname":"h1","facts":{"cpus":2}})");
  ASSERT_EQ(j->status, 201) << j->body;
  EXPECT_EQ(Json(*j).at("heartbeat_interval").as_string(), "2s");
  auto woke = got.get_future().get();
  reader.join();
  EXPECT_EQ(Json(woke).at("status").at("instances").as_array().size(), 1u);
  std::string id(Json(*j).at("instance_id").as_string());
  client::Client agent({s.addr(), std::string(Json(*j).at("agent_key").as_string())});
  auto hb = agent.Do("POST", "/v1/instances/" + id + "/heartbeat",
                     R"({"agent_version":"0.1.0","current_run":{"run_id":"r-9"}})");
  ASSERT_EQ(hb->status, 200) << hb->body;
  env = Json(*c.Do("GET", "/v1/environments/sim"));
  EXPECT_EQ(env.at("status").at("phase").as_string(), "ready");
  EXPECT_EQ(env.at("status").at("running").as_int64(), 1);
  const auto& inst = env.at("status").at("instances").as_array()[0];
  EXPECT_EQ(inst.at("state").as_string(), "running");
  EXPECT_EQ(inst.at("current_run").at("run_id").as_string(), "r-9");
  EXPECT_EQ(inst.at("facts").at("cpus").as_int64(), 2);
  // A run report is stored once per run_id, however often it is delivered.
  std::string report =
      R"({"run_id":"r-9","status":"failed","reason":"main exited 2","main_exit":2,)"
      R"("started_at":"2026-11-23T10:00:00Z","finished_at":"2026-11-23T10:00:03Z"})";
  EXPECT_EQ(agent.Do("POST", "/v1/instances/" + id + "/runs", report)->status, 201);
  EXPECT_EQ(agent.Do("POST", "/v1/instances/" + id + "/runs", report)->status, 200);
  auto runs = Json(*c.Do("GET", "/v1/instances/" + id + "/runs"));
  ASSERT_EQ(runs.at("items").as_array().size(), 1u);
  EXPECT_EQ(runs.at("items").as_array()[0].at("duration_ms").as_int64(), 3000);
  auto events = c.Do("GET", "/v1/environments/sim/events")->body;
  for (auto kind : {"created", "joined", "running", "run-failed"}) {
    EXPECT_NE(events.find(std::string("\"") + kind + "\""), std::string::npos) << events;
  }
  EXPECT_EQ(c.Do("DELETE", "/v1/environments/sim")->status, 204);
  EXPECT_EQ(c.Do("GET", "/v1/instances/" + id)->status, 404);
  EXPECT_EQ(agent.Do("POST", "/v1/instances/" + id + "/heartbeat", "{}")->status, 401);
  EXPECT_EQ(joiner.Do("POST", "/v1/environments/sim/join", "")->status, 401);
}

TEST_P(Server, PaginationWalksEveryVariableOnce) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  for (int i = 0; i < 25; ++i) {
    ASSERT_EQ(c.Do("PUT", "/v1/variables/v" + std::to_string(100 + i), R"({"value":"x"})")->status,
              201);
  }
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto r = c.Do("GET", "/v1/variables?limit=10" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r->status, 200);
    auto v = Json(*r);
    for (auto& it : v.at("items").as_array()) seen.insert(std::string(it.at("key").as_string()));
    cursor = v.at("next_cursor").is_null() ? "" : std::string(v.at("next_cursor").as_string());
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(pages, 3);
}

TEST_P(Server, KeysTenantsAndRoles) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto admin = s.NewClient();
  auto mk = [&](std::string body) {
    auto r = admin.Do("POST", "/v1/keys", body);
    EXPECT_EQ(r->status, 201) << r->body;
    return Json(*r);
  };
  auto a = mk(R"({"name":"alice","role":"user","tenant":"team-a"})");
  auto b = mk(R"({"name":"bob","role":"user","tenant":"team-b"})");
  auto v = mk(R"({"name":"viewer","role":"viewer","tenant":"team-a"})");
  auto ca = s.NewClient(std::string(a.at("key").as_string()));
  auto cb = s.NewClient(std::string(b.at("key").as_string()));
  auto cv = s.NewClient(std::string(v.at("key").as_string()));

  ASSERT_EQ(ca.Do("PUT", "/v1/variables/secret", R"({"value":"a"})")->status, 201);
  EXPECT_EQ(cb.Do("GET", "/v1/variables/secret")->status, 404) << "other tenant: 404";
  EXPECT_EQ(cb.Do("GET", "/v1/variables/secret?tenant=team-a")->status, 404);
  EXPECT_EQ(cv.Do("GET", "/v1/variables/secret")->status, 200);
  EXPECT_EQ(cv.Do("PUT", "/v1/variables/secret", R"({"value":"b"})")->status, 403);
  EXPECT_EQ(admin.Do("GET", "/v1/variables/secret?tenant=team-a")->status, 200);

  std::string bid(b.at("id").as_string());
  EXPECT_EQ(ca.Do("DELETE", "/v1/keys/" + bid)->status, 404);
  auto la = ca.Do("GET", "/v1/keys");
  EXPECT_EQ(Json(*la).at("items").as_array().size(), 2u);  // alice + viewer of team-a
  EXPECT_EQ(la->body.find("\"key\""), std::string::npos) << "secrets are never listed";
  EXPECT_EQ(admin.Do("DELETE", "/v1/keys/" + bid)->status, 204);
  EXPECT_EQ(cb.Do("GET", "/v1/status")->status, 401) << "a deleted key stops working";
}

// `curl -d '{"value":"x"}'` sends JSON as a form, or with no Content-Type at all: taken as JSON
// when it parses as JSON, as Consul and Nomad do.
TEST_P(Server, JsonSentAsAFormOrWithoutContentTypeIsAccepted) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  auto form = c.Do("PUT", "/v1/variables/from-curl", R"({"value":"x"})",
                   {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(form->status, 201) << form->body;
  auto bare = c.Do("PUT", "/v1/variables/bare", R"({"value":"y"})", {{"Content-Type", ""}});
  EXPECT_EQ(bare->status, 201) << bare->body;
  EXPECT_EQ(Json(*c.Do("GET", "/v1/variables/from-curl")).at("value").as_string(), "x");
}

// local and exec run commands on the server's host: admin keys only (docs/architecture.md), and
// only the providers a server enables exist on it.
TEST_P(Server, ProvidersThatRunOnTheHostNeedAnAdminAndMustBeEnabled) {
  TestServer s(DbArgs({"--providers", "static,exec,local"}));
  ASSERT_TRUE(s.Start());
  auto admin = s.NewClient();
  auto user = admin.Do("POST", "/v1/keys", R"({"name":"u","role":"user"})");
  auto u = s.NewClient(std::string(Json(*user).at("key").as_string()));
  auto local = u.Do("PUT", "/v1/environments/mine", R"({"provider":"local","capacity":0})");
  EXPECT_EQ(local->status, 403) << local->body;
  EXPECT_EQ(u.Do("PUT", "/v1/environments/mine", R"({"provider":"static"})")->status, 201);
  EXPECT_EQ(admin.Do("PUT", "/v1/environments/ops", R"({"provider":"local","capacity":0})")->status,
            201);
  s.Stop();
  TestServer only_static(DbArgs({"--providers", "static"}), s.data_dir());
  ASSERT_TRUE(only_static.Start());
  auto r = only_static.NewClient().Do("PUT", "/v1/environments/ops2",
                                      R"({"provider":"local","capacity":0})");
  EXPECT_EQ(r->status, 422) << r->body;
  EXPECT_NE(r->body.find("not enabled on this server"), std::string::npos) << r->body;
  EXPECT_EQ(Json(*r).at("errors").at(0).at("field").as_string(), "spec.provider");
}

// A stored spec that no longer parses (damaged, or written under older rules) is shown as a
// condition and acted on by nothing; it is never silently read as the defaults (capacity 0).
TEST_P(Server, AStoredSpecThatNoLongerParsesIsReportedNotActedOn) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  ASSERT_EQ(s.NewClient()
                .Do("PUT", "/v1/environments/web", R"({"provider":"static","capacity":2})")
                ->status,
            201);
  ASSERT_EQ(s.Stop(), 0);
  auto args = DbArgs();
  std::string url = args.size() > 1 ? args[1] : "sqlite://" + s.data_dir() + "/drover.db";
  {
    auto store = testing::OpenStoreAt(url);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store::WriteSync(*store, [](store::Tx& tx) {
                  return tx
                      .Exec("UPDATE environments SET spec = ? WHERE name = 'web'",
                            {std::string_view(R"({"provider":"cloud","capacity":2})")})
                      .status();
                }).ok());
    store->Close();
  }
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  auto env = Json(*c.Do("GET", "/v1/environments/web"));
  const auto& st = env.at("status");
  EXPECT_EQ(st.at("phase").as_string(), "degraded");
  const auto& cond = st.at("conditions").at(0);
  EXPECT_EQ(cond.at("type").as_string(), "SpecValid");
  EXPECT_EQ(cond.at("status").as_bool(), false);
  EXPECT_NE(std::string(cond.at("reason").as_string()).find("spec.provider"), std::string::npos)
      << cond;
  EXPECT_TRUE(testing::WaitFor([&] {
    return c.Do("GET", "/v1/environments/web/events")->body.find("spec-invalid") !=
           std::string::npos;
  })) << "the controller says why it does nothing";
  // Writing the spec again fixes it.
  ASSERT_EQ(c.Do("PUT", "/v1/environments/web", R"({"provider":"static","capacity":2})")->status,
            200);
  auto fixed = Json(*c.Do("GET", "/v1/environments/web"));
  EXPECT_EQ(fixed.at("status").at("conditions").at(0).at("type").as_string(), "Ready");
}

TEST_P(Server, GracefulShutdownFinishesAndExitsZero) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/variables/a", R"({"value":"1"})")->status, 201);
  EXPECT_EQ(s.Stop(), 0);
  EXPECT_NE(s.Log().find("stopped cleanly"), std::string::npos) << s.Log();
  TestServer again(DbArgs(), s.data_dir());
  ASSERT_TRUE(again.Start());
  auto c2 = again.NewClient();
  EXPECT_EQ(Json(*c2.Do("GET", "/v1/variables/a")).at("value").as_string(), "1");
}

TEST_P(Server, AccessLogHasOneLinePerRequestAndNoSecrets) {
  TestServer s(DbArgs({"--log-format", "json"}));
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  auto r = c.Do("GET", "/v1/status", "", {{"X-Request-Id", "trace-me-42"}});
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(s.Stop(), 0);
  std::string log = s.Log();
  auto pos = log.find("trace-me-42");
  ASSERT_NE(pos, std::string::npos) << log;
  auto line_start = log.rfind('\n', pos) + 1;
  auto line = boost::json::parse(log.substr(line_start, log.find('\n', pos) - line_start));
  EXPECT_EQ(line.at("msg").as_string(), "request");
  EXPECT_EQ(line.at("path").as_string(), "/v1/status");
  EXPECT_EQ(line.at("status").as_string(), "200");
  EXPECT_FALSE(line.at("key").as_string().empty());
  EXPECT_EQ(log.find(s.admin_key()), std::string::npos) << "the key must never be logged";
}

TEST_P(Server, FirstStartPrintsABootstrapKeyOnce) {
  testing::TempDir dir;
  std::string out;
  ASSERT_EQ(testing::RunDrover({"server", "--data-dir", dir.path(), "--migrate-only"}, &out), 0)
      << out;
  EXPECT_EQ(out.find("drv_"), std::string::npos) << "--migrate-only creates no key";
  {
    TestServer s(DbArgs(), dir.path());
    s.UseBootstrapToken(false);
    ASSERT_TRUE(s.Start());
    ASSERT_TRUE(s.admin_key().starts_with("drv_")) << s.Log();
    auto c = s.NewClient();
    auto st = c.Do("GET", "/v1/status");
    EXPECT_EQ(st->status, 200) << "the printed key is an admin key";
    auto keys = Json(*c.Do("GET", "/v1/keys"));
    EXPECT_EQ(keys.at("items").as_array()[0].at("role").as_string(), "admin");
    EXPECT_EQ(s.Stop(), 0);
    // Only the printed line holds the key: the log lines around it do not.
    std::string log = s.Log();
    EXPECT_EQ(log.find(s.admin_key()), log.rfind(s.admin_key()));
  }
  std::remove((dir.path() + "/server.log").c_str());
  TestServer again(DbArgs(), dir.path());
  again.UseBootstrapToken(false);
  ASSERT_TRUE(again.Start());
  EXPECT_TRUE(again.admin_key().empty()) << "a key is printed on the first start only";
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// /metrics is a scrape Prometheus accepts: promtool (Debian's prometheus package) checks the
// exposition, after requests to routes that serve several methods (once exposed as duplicate
// series) and to no route at all.
TEST_P(Server, MetricsPassPromtool) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/variables/a", R"({"value":"x"})")->status, 201);
  EXPECT_EQ(c.Do("GET", "/v1/variables/a")->status, 200);
  EXPECT_EQ(c.Do("HEAD", "/v1/cc/agent")->status, 200);
  EXPECT_EQ(c.Do("DELETE", "/v1/variables/a")->status, 204);
  EXPECT_EQ(c.Do("GET", "/v1/variables/a")->status, 404);
  EXPECT_EQ(c.Do("GET", "/nowhere")->status, 404);
  auto m = c.Do("GET", "/metrics");
  ASSERT_EQ(m->status, 200);
  testing::TempDir dir;
  std::ofstream(dir.File("metrics.txt")) << m->body;
  std::string cmd = "promtool check metrics < " + dir.File("metrics.txt") + " > " +
                    dir.File("promtool.txt") + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream out(dir.File("promtool.txt"));
  std::string report((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool (make test installs Debian's prometheus package):\n" << report;
  EXPECT_NE(m->body.find("route=\"/v1/variables/{key}\",method=\"PUT\""), std::string::npos);
  EXPECT_NE(m->body.find("route=\"/v1/variables/{key}\",method=\"DELETE\""), std::string::npos);
  EXPECT_NE(m->body.find("drover_build_info{version=\"" DROVER_VERSION "\",backend=\""),
            std::string::npos);
  EXPECT_NE(m->body.find("\nprocess_resident_memory_bytes "), std::string::npos);
}

// The gauges read from the store follow changes (refreshed off the request path).
TEST_P(Server, GaugesCountEnvironmentsInstancesAndSchedules) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/environments/web", R"({"provider":"static","capacity":0})")->status,
            201);
  ASSERT_EQ(c.Do("PUT", "/v1/schedules/nightly",
                 R"({"cron":"0 3 * * *","action":{"type":"stop","environment":"web"}})")
                ->status,
            201);
  bool seen = false;
  std::string body;
  for (int i = 0; i < 600 && !seen; ++i) {
    body = c.Do("GET", "/metrics")->body;
    seen = body.find("\ndrover_environments{phase=\"stopped\"} 1\n") != std::string::npos &&
           body.find("\ndrover_schedules 1\n") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(seen) << body;
  EXPECT_NE(body.find("\ndrover_instances{state=\"running\"} 0\n"), std::string::npos) << body;
  EXPECT_NE(body.find("\ndrover_environments{phase=\"ready\"} 0\n"), std::string::npos);
}

}  // namespace
}  // namespace drover
