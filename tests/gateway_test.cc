// The gateway end to end on real servers, both backends: routes as resources, /svc/ to real
// upstream processes (tests/gateway_upstream.py) — balancing, failover when one is killed,
// timeouts, retries only where safe, rate limits, 100 MB bodies both ways with the server's
// memory bounded, WebSocket — and /env/ to environments of the local provider, woken from zero.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "testing/git_repo.h"
#include "testing/raw_http.h"
#include "testing/store_fixture.h"
#include "testing/test_server.h"
#include "upstream_process.h"

namespace drover {
namespace {

namespace json = boost::json;
using testing::Plain;
using testing::TestServer;
using testing::Upstream;

json::value Json(const client::Response& r) { return json::parse(r.body); }

// VmRSS of a process, in KiB.
int64_t RssKiB(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6));
  }
  return -1;
}

// A WebSocket round trip through the server at `port`: the handshake on `path`, then each
// message sent masked and read back from the echo. Returns the messages read ("" on failure).
std::vector<std::string> WebSocketEcho(int port, const std::string& path, const std::string& key,
                                       const std::vector<std::string>& messages) {
  int fd = testing::ConnectTo(port);
  std::vector<std::string> out;
  if (fd < 0) return out;
  std::string head = "GET " + path +
                     " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     "Authorization: Bearer " +
                     key + "\r\n\r\n";
  std::string got;
  if (!testing::WriteAll(fd, head) || !testing::ReadUntil(fd, &got, "\r\n\r\n") ||
      !got.starts_with("HTTP/1.1 101")) {
    ADD_FAILURE() << "no 101: " << got;
    ::close(fd);
    return out;
  }
  got.erase(0, got.find("\r\n\r\n") + 4);
  for (const auto& m : messages) {
    std::string frame;
    frame += static_cast<char>(0x81);
    if (m.size() < 126) {
      frame += static_cast<char>(0x80 | m.size());
    } else {
      frame += static_cast<char>(0x80 | 126);
      frame += static_cast<char>(m.size() >> 8);
      frame += static_cast<char>(m.size() & 0xff);
    }
    const char mask[4] = {0x11, 0x22, 0x33, 0x44};
    frame.append(mask, 4);
    for (size_t i = 0; i < m.size(); ++i) frame += static_cast<char>(m[i] ^ mask[i % 4]);
    EXPECT_TRUE(testing::WriteAll(fd, frame));
    // The echo: unmasked, 2 or 4 bytes of header.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::string msg;
    while (std::chrono::steady_clock::now() < deadline) {
      if (got.size() >= 2) {
        size_t n = static_cast<unsigned char>(got[1]) & 0x7f, off = 2;
        if (n == 126 && got.size() >= 4) {
          n = (static_cast<unsigned char>(got[2]) << 8) | static_cast<unsigned char>(got[3]);
          off = 4;
        }
        if (n != 126 && got.size() >= off + n) {
          msg = got.substr(off, n);
          got.erase(0, off + n);
          break;
        }
      }
      char buf[65536];
      ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    out.push_back(msg);
  }
  ::close(fd);
  return out;
}

class Gateway : public testing::BackendTest {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(DbArgs({"--local-instances", "stop"}));
    ASSERT_TRUE(server_->Start());
    client::Options o = Plain(server_->addr());
    o.token = server_->admin_key();
    admin_ = std::make_unique<client::Client>(o);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  void PutRoute(const std::string& name, const std::string& spec, int want = 201) {
    auto r = admin_->Do("PUT", "/v1/routes/" + name, spec);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, want) << r->body;
  }
  std::string NewKey(const std::string& role, const std::string& tenant,
                     std::string* id = nullptr) {
    auto r = admin_->Do("POST", "/v1/keys",
                        R"({"name":"k-)" + role + "-" + tenant + R"(","role":")" + role +
                            R"(","tenant":")" + tenant + R"("})");
    EXPECT_EQ(r->status, 201) << r->body;
    auto v = Json(*r);
    if (id) *id = std::string(v.at("id").as_string());
    return std::string(v.at("key").as_string());
  }
  // GET through the gateway; the upstream's name from /whoami, or "STATUS" when it failed.
  std::string WhoAnswers(client::Client& c, const std::string& path,
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto r = c.Do("GET", path, {}, std::move(headers));
    if (!r.ok()) return "unreachable";
    if (r->status != 200) return std::to_string(r->status) + " " + r->body;
    return std::string(Json(*r).at("name").as_string());
  }
  int64_t Metric(const std::string& line_prefix) {
    auto r = admin_->Do("GET", "/metrics");
    std::istringstream in(r->body);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with(line_prefix + " ")) return std::stoll(line.substr(line_prefix.size()));
    }
    return -1;
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<client::Client> admin_;
};
DROVER_ON_ALL_BACKENDS(Gateway);

TEST_P(Gateway, RoutesAreResourcesWithFieldErrorsAndGlobalNames) {
  Upstream a("a");
  PutRoute("api", R"({"upstreams":[")" + a.url() + R"("]})");
  PutRoute("api", R"({"upstreams":[")" + a.url() + R"("]})", 200);  // unchanged
  auto g = admin_->Do("GET", "/v1/routes/api");
  ASSERT_EQ(g->status, 200) << g->body;
  EXPECT_EQ(Json(*g).at("spec").at("upstreams").at(0).as_string(), a.url());
  auto l = admin_->Do("GET", "/v1/routes");
  EXPECT_EQ(Json(*l).at("items").as_array().size(), 1u);
  // A bad spec: every problem named, nothing stored.
  auto bad = admin_->Do("PUT", "/v1/routes/bad",
                        R"({"upstreams":["https://x","http://a b"],"balance":"x",)"
                        R"("timeout":"soon","rate_limit":{"rps":-1},"extra":1})");
  ASSERT_EQ(bad->status, 422) << bad->body;
  std::set<std::string> fields;
  auto problem = Json(*bad);
  for (const auto& e : problem.at("errors").as_array()) {
    fields.insert(std::string(e.at("field").as_string()));
  }
  EXPECT_EQ(fields, (std::set<std::string>{"upstreams[0]", "upstreams[1]", "balance", "timeout",
                                           "rate_limit.rps", "extra"}));
  EXPECT_EQ(admin_->Do("GET", "/v1/routes/bad")->status, 404);
  EXPECT_EQ(admin_->Do("PUT", "/v1/routes/bad", "not json")->status, 400);
  // Names are global: another tenant cannot take "api", and does not see it.
  client::Client other = server_->NewClient(NewKey("user", "other"));
  auto taken = other.Do("PUT", "/v1/routes/api", R"({"upstreams":["http://127.0.0.1:1"]})");
  EXPECT_EQ(taken->status, 409) << taken->body;
  EXPECT_EQ(other.Do("GET", "/v1/routes/api")->status, 404);
  EXPECT_EQ(other.Do("DELETE", "/v1/routes/api")->status, 404);
  // ...nor reaches it through /svc/ (auth: required, another tenant's route).
  EXPECT_EQ(other.Do("GET", "/svc/api/whoami")->status, 404);
  EXPECT_EQ(admin_->Do("DELETE", "/v1/routes/api")->status, 204);
  EXPECT_EQ(WhoAnswers(*admin_, "/svc/api/whoami").substr(0, 3), "404");
}

TEST_P(Gateway, ProxiesWithHeadersAndNeverForwardsTheKey) {
  Upstream a("a");
  PutRoute("api", R"({"upstreams":[")" + a.url() + R"(/base"]})");
  {
    // A route answers as soon as its PUT has: concurrent first requests (on every I/O thread)
    // never see the table from before it.
    PutRoute("fresh", R"({"upstreams":[")" + a.url() + R"("]})");
    std::vector<std::thread> callers;
    std::atomic<int> ok{0};
    for (int i = 0; i < 8; ++i) {
      callers.emplace_back([&] {
        client::Client c(Plain(server_->addr()));
        auto f = c.Do("GET", "/svc/fresh/healthz", {},
                      {{"Authorization", "Bearer " + server_->admin_key()}});
        if (f.ok() && f->status == 200) ++ok;
      });
    }
    for (auto& t : callers) t.join();
    EXPECT_EQ(ok.load(), 8);
  }
  auto r = admin_->Do("POST", "/svc/api/whoami?x=1&y=%20", "{}",
                      {{"X-Forwarded-For", "10.1.1.1"},
                       {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                       {"X-Request-Id", "req-123"},
                       {"Connection", "X-Secret"},
                       {"X-Secret", "hop"}});
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = Json(*r);
  EXPECT_EQ(v.at("path").as_string(), "/base/whoami?x=1&y=%20");  // prefix stripped, base added
  EXPECT_EQ(v.at("method").as_string(), "POST");
  const auto& h = v.at("headers").as_object();
  EXPECT_FALSE(h.contains("authorization"));  // the drover key stays here
  EXPECT_FALSE(h.contains("x-secret"));       // named in Connection: hop-by-hop
  EXPECT_EQ(h.at("x-forwarded-for").as_string(), "10.1.1.1, 127.0.0.1");
  EXPECT_EQ(h.at("x-forwarded-proto").as_string(), "http");
  EXPECT_EQ(h.at("x-request-id").as_string(), "req-123");
  EXPECT_EQ(h.at("traceparent").as_string(),
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_TRUE(std::string(h.at("forwarded").as_string()).find("for=127.0.0.1") !=
              std::string::npos);
  EXPECT_EQ(r->Header("X-Upstream"), "a");
  EXPECT_EQ(r->Header("X-Request-Id"), "req-123");
  // auth: required without a key: 401, and the upstream never sees it.
  int64_t hits = a.Hits();
  client::Client anon(Plain(server_->addr()));
  EXPECT_EQ(anon.Do("GET", "/svc/api/whoami")->status, 401);
  EXPECT_EQ(a.Hits(), hits);
  // auth: none: anyone; a drover key sent anyway is still not forwarded.
  PutRoute("open", R"({"upstreams":[")" + a.url() + R"("],"auth":"none"})");
  auto o = anon.Do("GET", "/svc/open/whoami", {}, {{"Authorization", "Bearer drv_abc"}});
  ASSERT_EQ(o->status, 200) << o->body;
  EXPECT_FALSE(Json(*o).at("headers").as_object().contains("authorization"));
  // Roles: a viewer is refused by a route for users.
  PutRoute("users", R"({"upstreams":[")" + a.url() + R"("],"roles":["user","admin"]})");
  client::Client viewer = server_->NewClient(NewKey("viewer", "default"));
  EXPECT_EQ(viewer.Do("GET", "/svc/users/whoami")->status, 403);
  EXPECT_EQ(viewer.Do("GET", "/svc/api/whoami")->status, 200);
}

TEST_P(Gateway, BalancesAndSurvivesAKilledUpstream) {
  Upstream a("a"), b("b"), c("c");
  PutRoute("rr", R"({"upstreams":[")" + a.url() + R"(",")" + b.url() + R"(",")" + c.url() +
                     R"("],"eject_after":2})");
  std::map<std::string, int> seen;
  for (int i = 0; i < 30; ++i) ++seen[WhoAnswers(*admin_, "/svc/rr/whoami")];
  EXPECT_EQ(seen, (std::map<std::string, int>{{"a", 10}, {"b", 10}, {"c", 10}}));
  // kill -9 one: idempotent GETs keep succeeding (retried on another), and it is ejected.
  b.Kill9();
  seen.clear();
  for (int i = 0; i < 60; ++i) ++seen[WhoAnswers(*admin_, "/svc/rr/whoami")];
  EXPECT_EQ(seen.size(), 2u) << seen.begin()->first;
  EXPECT_EQ(seen["a"] + seen["c"], 60);
  EXPECT_GE(Metric(R"(drover_gateway_upstream_ejections_total{tenant="default",route="rr"})"), 1);
  EXPECT_EQ(Metric(R"(drover_gateway_upstreams{tenant="default",route="rr",state="ejected"})"), 1);
  auto g = admin_->Do("GET", "/v1/routes/rr");
  int ejected = 0;
  auto route = Json(*g);
  for (const auto& u : route.at("status").at("upstreams").as_array()) {
    ejected += u.at("ejected").as_bool() ? 1 : 0;
  }
  EXPECT_EQ(ejected, 1);

  // Hash on a header: a user sticks to one upstream; users spread.
  PutRoute("sticky", R"({"upstreams":[")" + a.url() + R"(",")" + c.url() +
                         R"("],"balance":"hash","hash_on":{"header":"X-User"}})");
  std::set<std::string> homes;
  for (int u = 0; u < 20; ++u) {
    std::string user = "user-" + std::to_string(u);
    std::string home = WhoAnswers(*admin_, "/svc/sticky/whoami", {{"X-User", user}});
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(WhoAnswers(*admin_, "/svc/sticky/whoami", {{"X-User", user}}), home);
    }
    homes.insert(home);
  }
  EXPECT_EQ(homes, (std::set<std::string>{"a", "c"}));
}

TEST_P(Gateway, TimeoutsRetriesAndRateLimits) {
  Upstream a("a"), b("b");
  PutRoute("slow", R"({"upstreams":[")" + a.url() + R"("],"timeout":"500ms","retries":0})");
  auto t = admin_->Do("GET", "/svc/slow/slow?ms=3000");
  ASSERT_EQ(t->status, 504) << t->body;
  EXPECT_EQ(t->Header("Content-Type"), "application/problem+json");
  // An upstream that refuses connections: 502 with the reason.
  PutRoute("dead", R"({"upstreams":["http://127.0.0.1:1"],"retries":0})");
  auto d = admin_->Do("GET", "/svc/dead/x");
  EXPECT_EQ(d->status, 502) << d->body;

  // 503 from the upstream: a GET is tried on the other upstream too, a POST never is.
  PutRoute("flaky", R"({"upstreams":[")" + a.url() + R"(",")" + b.url() +
                        R"("],"retries":1,"eject_after":100})");
  auto hits = [&] { return a.Hits() + b.Hits(); };
  int64_t before = hits();
  auto g = admin_->Do("GET", "/svc/flaky/status/503");
  EXPECT_EQ(g->status, 503);
  EXPECT_EQ(hits() - before, 2);
  before = hits();
  auto p = admin_->Do("POST", "/svc/flaky/status/503", "{}");
  EXPECT_EQ(p->status, 503);
  EXPECT_EQ(hits() - before, 1);
  // Other statuses pass through untouched, not retried.
  before = hits();
  EXPECT_EQ(admin_->Do("GET", "/svc/flaky/status/404")->status, 404);
  EXPECT_EQ(admin_->Do("PUT", "/svc/flaky/status/201", "x")->status, 201);
  EXPECT_EQ(hits() - before, 2);

  // Rate limit per key: the burst passes, then 429 with Retry-After.
  PutRoute("limited", R"({"upstreams":[")" + a.url() + R"("],"rate_limit":{"rps":1,"burst":3}})");
  int ok = 0, limited = 0;
  std::string retry_after;
  for (int i = 0; i < 6; ++i) {
    auto r = admin_->Do("GET", "/svc/limited/whoami");
    if (r->status == 200) ++ok;
    if (r->status == 429) {
      ++limited;
      retry_after = r->Header("Retry-After");
    }
  }
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 4);
  EXPECT_GE(limited, 2);
  EXPECT_EQ(retry_after, "1");
  // Another key has its own bucket.
  client::Client user = server_->NewClient(NewKey("user", "default"));
  EXPECT_EQ(user.Do("GET", "/svc/limited/whoami")->status, 200);
}

TEST_P(Gateway, AKeptAliveConnectionTheUpstreamClosedIsNotAFailure) {
  // The upstream closes connections idle for 0.2 s; the gateway keeps them for reuse. A request
  // that meets a closed one is sent again on a new connection (a GET) or never sent on it (a
  // POST, checked first): no error, though the route allows no retries.
  Upstream a("a", {"--idle-close", "0.2"});
  PutRoute("closing", R"({"upstreams":[")" + a.url() + R"("],"retries":0,"eject_after":1})");
  for (int i = 0; i < 3; ++i) {
    auto g = admin_->Do("GET", "/svc/closing/whoami");
    ASSERT_EQ(g->status, 200) << g->body;
    // Long enough for the upstream to close the connection the gateway now keeps.
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    auto g2 = admin_->Do("GET", "/svc/closing/whoami");
    EXPECT_EQ(g2->status, 200) << g2->body;
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    auto p = admin_->Do("POST", "/svc/closing/echo", "once");
    EXPECT_EQ(p->status, 200) << p->body;
    EXPECT_EQ(p->body, "once");
  }
  // Never counted against the upstream: with eject_after 1 one failure would have ejected it.
  EXPECT_EQ(Metric(R"(drover_gateway_upstream_ejections_total{tenant="default",route="closing"})"),
            0);
}

TEST_P(Gateway, StreamsHundredMegabytesBothWaysInBoundedMemory) {
  Upstream a("a");
  PutRoute("big", R"({"upstreams":[")" + a.url() + R"("],"timeout":"120s"})");
  const size_t kSize = 100u * 1000 * 1000;
  int64_t rss_before = RssKiB(server_->pid());
  // Up: a raw request with a Content-Length, written in pieces.
  int fd = testing::ConnectTo(testing::PortOf(*server_));
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::WriteAll(
      fd, "POST /svc/big/sink HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
              server_->admin_key() + "\r\nContent-Length: " + std::to_string(kSize) + "\r\n\r\n"));
  std::string piece(1 << 20, 'z');
  int64_t peak = 0;
  for (size_t sent = 0; sent < kSize; sent += piece.size()) {
    ASSERT_TRUE(testing::WriteAll(fd, piece));
    if (sent % (10 << 20) == 0) peak = std::max(peak, RssKiB(server_->pid()));
  }
  std::string got;
  ASSERT_TRUE(testing::ReadUntil(fd, &got, "}"));
  ::close(fd);
  EXPECT_NE(got.find("\"bytes\": " + std::to_string(kSize)), std::string::npos) << got;
  // Down: 100 MB read as it arrives.
  fd = testing::ConnectTo(testing::PortOf(*server_));
  ASSERT_TRUE(testing::WriteAll(fd, "GET /svc/big/bytes?n=" + std::to_string(kSize) +
                                        " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                        "Authorization: Bearer " +
                                        server_->admin_key() + "\r\n\r\n"));
  size_t total = 0;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
    if (total % (10 << 20) < sizeof buf) peak = std::max(peak, RssKiB(server_->pid()));
  }
  ::close(fd);
  EXPECT_GT(total, kSize);  // the body and its head
  // Memory stays bounded: the bodies went through in pieces, never whole.
  EXPECT_LT(peak - rss_before, 64 * 1024) << "RSS grew from " << rss_before << " KiB to " << peak;
}

TEST_P(Gateway, WebSocketPassesThrough) {
  Upstream a("a");
  PutRoute("ws", R"({"upstreams":[")" + a.url() + R"("]})");
  std::string big(5000, 'q');
  auto echoed =
      WebSocketEcho(testing::PortOf(*server_), "/svc/ws/ws", server_->admin_key(), {"hello", big});
  EXPECT_EQ(echoed, (std::vector<std::string>{"hello", big}));
}

// Environments of the local provider whose agents run gateway_upstream.py on their PORT.
class GatewayEnvironments : public Gateway {
 protected:
  void CreateServiceEnv(const std::string& name, int capacity, const std::string& extra = "") {
    std::ifstream script(testing::kUpstreamScript);
    std::stringstream text;
    text << script.rdbuf();
    repo_.Commit({{"gateway_upstream.py", text.str()},
                  {"run.sh", "#!/bin/sh\nexec python3 ./gateway_upstream.py --name \"i-$PORT\"\n"}},
                 "service");
    auto r = admin_->Do(
        "PUT", "/v1/environments/" + name,
        R"({"provider":"local","capacity":)" + std::to_string(capacity) +
            R"(,"agent":{"repository":")" + repo_.url() +
            R"(","main_run":"./run.sh","interval":3600},"health":{"heartbeat_interval":"1s"},)"
            R"("service":{"port":8080,"health_path":"/healthz"})" +
            extra + "}");
    ASSERT_EQ(r->status, 201) << r->body;
  }
  std::string Phase(const std::string& env) {
    auto r = admin_->Do("GET", "/v1/environments/" + env);
    return r->status == 200 ? std::string(Json(*r).at("status").at("phase").as_string()) : "";
  }
  testing::GitRepo repo_;
};
DROVER_ON_ALL_BACKENDS(GatewayEnvironments);

TEST_P(GatewayEnvironments, RouteToAnEnvironmentsInstancesAndTheEnvironmentProxy) {
  CreateServiceEnv("web", 3);
  PutRoute("web", R"({"environment":"web"})");
  // The first request waits for a healthy instance; soon all three take turns.
  std::set<std::string> names;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::string who = WhoAnswers(*admin_, "/svc/web/whoami");
        if (who.starts_with("i-")) names.insert(who);
        return names.size() == 3;
      },
      90000))
      << names.size();
  // /env/NAME/ reaches the caller's own environment, WebSocket included.
  EXPECT_TRUE(WhoAnswers(*admin_, "/env/web/whoami").starts_with("i-"));
  auto echoed =
      WebSocketEcho(testing::PortOf(*server_), "/env/web/ws", server_->admin_key(), {"hi"});
  EXPECT_EQ(echoed, (std::vector<std::string>{"hi"}));
  // Another tenant's /env/web does not exist for it; no key is 401.
  client::Client other = server_->NewClient(NewKey("user", "other"));
  EXPECT_EQ(other.Do("GET", "/env/web/whoami")->status, 404);
  client::Client anon(Plain(server_->addr()));
  EXPECT_EQ(anon.Do("GET", "/env/web/whoami")->status, 401);
  EXPECT_EQ(admin_->Do("GET", "/env/nosuch/whoami")->status, 404);
}

TEST_P(GatewayEnvironments, AnIdleEnvironmentIsWokenByARequest) {
  CreateServiceEnv("nb", 1, R"(,"idle_timeout":"3s","wake_timeout":"90s")");
  ASSERT_TRUE(testing::WaitFor(
      [&] { return WhoAnswers(*admin_, "/env/nb/whoami").starts_with("i-"); }, 90000));
  // No traffic: closed by its idle timeout.
  ASSERT_TRUE(testing::WaitFor([&] { return Phase("nb") == "stopped"; }, 60000)) << Phase("nb");
  // A request wakes it and is held until an instance answers.
  auto r = admin_->Do("GET", "/env/nb/whoami");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(std::string(Json(*r).at("name").as_string()).starts_with("i-"));
  auto events = admin_->Do("GET", "/v1/environments/nb/events?limit=1000");
  EXPECT_NE(events->body.find("\"woken\""), std::string::npos) << events->body;
  // Traffic is activity: a request moves the environment's active_at (what its idle timeout
  // counts from; the plan's tests cover the rest).
  auto active_at = [&] {
    auto g = admin_->Do("GET", "/v1/environments/nb");
    auto env = Json(*g);
    const auto& v = env.at("active_at");
    return v.is_string() ? std::string(v.as_string()) : std::string();
  };
  std::string first = active_at();
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        (void)admin_->Do("GET", "/env/nb/whoami");
        return active_at() > first;
      },
      30000));
}

TEST_P(GatewayEnvironments, PerUserEnvironmentsAndBrowserSessions) {
  CreateServiceEnv("nb", 0);  // a template: no instance of its own
  PutRoute("notebooks", R"({"per_user":{"template":"nb"}})");
  std::string id_a, id_b;
  client::Client a = server_->NewClient(NewKey("user", "default", &id_a));
  client::Client b = server_->NewClient(NewKey("user", "default", &id_b));
  // Each caller gets an environment of their own on the first request, and keeps it.
  std::string home_a = WhoAnswers(a, "/svc/notebooks/whoami");
  std::string home_b = WhoAnswers(b, "/svc/notebooks/whoami");
  ASSERT_TRUE(home_a.starts_with("i-")) << home_a;
  ASSERT_TRUE(home_b.starts_with("i-")) << home_b;
  EXPECT_NE(home_a, home_b);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(WhoAnswers(a, "/svc/notebooks/whoami"), home_a);
    EXPECT_EQ(WhoAnswers(b, "/svc/notebooks/whoami"), home_b);
  }
  auto per_user = [](std::string id) {
    for (auto& c : id) c = c == '_' ? '-' : c;
    return "nb-" + id;
  };
  std::string env_a = per_user(id_a);
  auto listed = admin_->Do("GET", "/v1/environments");
  EXPECT_NE(listed->body.find("\"" + env_a + "\""), std::string::npos) << listed->body;
  EXPECT_NE(listed->body.find("\"" + per_user(id_b) + "\""), std::string::npos);
  EXPECT_EQ(Phase("nb"), "stopped");  // the template itself runs nothing

  // A browser: a single-use login URL sets a session cookie for /env/NAME/ only.
  auto open = a.Do("POST", "/v1/environments/" + env_a + "/open");
  ASSERT_EQ(open->status, 201) << open->body;
  std::string url(Json(*open).at("url").as_string());
  ASSERT_TRUE(url.starts_with("/env/" + env_a + "/?drover_code=")) << url;
  client::Client browser(Plain(server_->addr()));
  auto login = browser.Do("GET", url);
  ASSERT_EQ(login->status, 303) << login->body;
  EXPECT_EQ(login->Header("Location"), "/env/" + env_a + "/");
  std::string cookie = login->Header("Set-Cookie");
  EXPECT_NE(cookie.find("Path=/env/" + env_a + "/"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  std::string session = cookie.substr(0, cookie.find(';'));
  EXPECT_EQ(browser.Do("GET", url)->status, 401);  // single use
  auto page = browser.Do("GET", "/env/" + env_a + "/whoami", {}, {{"Cookie", "x=1; " + session}});
  ASSERT_EQ(page->status, 200) << page->body;
  auto seen = Json(*page);
  EXPECT_EQ(seen.at("name").as_string(), home_a);
  EXPECT_EQ(seen.at("headers").at("cookie").as_string(), "x=1");  // the session stays here
  // The cookie is for that environment only, and ends with the key that opened it.
  EXPECT_EQ(
      browser.Do("GET", "/env/" + per_user(id_b) + "/whoami", {}, {{"Cookie", session}})->status,
      401);
  ASSERT_EQ(admin_->Do("DELETE", "/v1/keys/" + id_a)->status, 204);
  EXPECT_TRUE(testing::WaitFor([&] {
    return browser.Do("GET", "/env/" + env_a + "/whoami", {}, {{"Cookie", session}})->status == 401;
  }));
}

}  // namespace
}  // namespace drover
