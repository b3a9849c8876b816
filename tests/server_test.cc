// A real drover server process: the tour of the API over loopback HTTP.
#include <gtest/gtest.h>

#include <boost/json.hpp>

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
  EXPECT_NE(m->body.find("drover_http_requests_total{route=\"/v1/status\",status=\"200\"} 1"),
            std::string::npos)
      << m->body;
  auto api = c.Do("GET", "/v1/openapi.json");
  EXPECT_EQ(api->status, 200);
  EXPECT_EQ(Json(*api).at("openapi").as_string(), "3.1.0");
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
