// A table of bad requests against a real server: each gets the right status and a
// problem+json body naming what is wrong; none gets a 500, none changes anything.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "testing/raw_http.h"
#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::ConnectTo;
using testing::PortOf;
using testing::RawExchange;
using testing::TestServer;

struct BadCase {
  std::string name;
  std::string who;  // admin | viewer | team-b | none | invalid
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  int status;
  std::string detail_has;           // substring of detail
  std::vector<std::string> fields;  // expected errors[].field, in order
};

class BadRequests : public testing::BackendTest {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(DbArgs());
    ASSERT_TRUE(server_->Start());
    auto admin = server_->NewClient();
    auto mk = [&](std::string body) {
      auto r = admin.Do("POST", "/v1/keys", body);
      return std::string(boost::json::parse(r->body).at("key").as_string());
    };
    viewer_ = mk(R"({"name":"v","role":"viewer"})");
    team_b_ = mk(R"({"name":"b","role":"user","tenant":"team-b"})");
    ASSERT_EQ(admin.Do("PUT", "/v1/variables/existing", R"({"value":"keep"})")->status, 201);
    auto env = admin.Do("PUT", "/v1/environments/web", R"({"provider":"static","capacity":1})");
    ASSERT_EQ(env->status, 201);
    auto join =
        client::Client({server_->addr(),
                        std::string(boost::json::parse(env->body).at("join_token").as_string())})
            .Do("POST", "/v1/environments/web/join", "");
    ASSERT_EQ(join->status, 201) << join->body;
    auto joined = boost::json::parse(join->body);
    instance_ = std::string(joined.at("instance_id").as_string());
    agent_ = std::string(joined.at("agent_key").as_string());
  }
  std::string instance_;
  std::string agent_;
  std::unique_ptr<TestServer> server_;
  std::string viewer_;
  std::string team_b_;
};
DROVER_ON_ALL_BACKENDS(BadRequests);

TEST_P(BadRequests, EachGetsAClearProblem) {
  const std::string huge(2 * 1024 * 1024, 'x');
  std::vector<BadCase> cases = {
      {"malformed json",
       "admin",
       "PUT",
       "/v1/variables/a",
       "{\"value\":",
       {},
       400,
       "not valid JSON",
       {}},
      {"not an object", "admin", "PUT", "/v1/variables/a", "[1,2]", {}, 400, "JSON object", {}},
      {"empty body", "admin", "PUT", "/v1/variables/a", "", {}, 400, "empty", {}},
      {"wrong type",
       "admin",
       "PUT",
       "/v1/variables/a",
       R"({"value":5})",
       {},
       422,
       "validation",
       {"value"}},
      {"missing field", "admin", "PUT", "/v1/variables/a", R"({})", {}, 422, "", {"value"}},
      {"unknown field",
       "admin",
       "PUT",
       "/v1/variables/a",
       R"({"value":"x","colour":"red"})",
       {},
       422,
       "",
       {"colour"}},
      {"bad key name",
       "admin",
       "PUT",
       "/v1/variables/Bad_Key",
       R"({"value":"x"})",
       {},
       422,
       "",
       {"key"}},
      {"bad environment",
       "admin",
       "PUT",
       "/v1/variables/a",
       R"({"value":"x","environment":"EU!"})",
       {},
       422,
       "",
       {"environment"}},
      {"bad env query",
       "admin",
       "GET",
       "/v1/variables/a?environment=E%20U",
       "",
       {},
       400,
       "environment",
       {}},
      {"bad limit", "admin", "GET", "/v1/variables?limit=0", "", {}, 400, "limit", {}},
      {"bad cursor", "admin", "GET", "/v1/variables?cursor=nothex", "", {}, 400, "cursor", {}},
      {"a form that is not JSON",
       "admin",
       "PUT",
       "/v1/variables/a",
       "value=x",
       {{"Content-Type", "application/x-www-form-urlencoded"}},
       415,
       "application/json",
       {}},
      {"wrong content type",
       "admin",
       "PUT",
       "/v1/variables/a",
       "<value>x</value>",
       {{"Content-Type", "application/xml"}},
       415,
       "application/json",
       {}},
      {"huge body", "admin", "PUT", "/v1/variables/a", huge, {}, 413, "exceeds the limit", {}},
      {"no key", "none", "GET", "/v1/variables/existing", "", {}, 401, "missing API key", {}},
      {"invalid key",
       "invalid",
       "GET",
       "/v1/variables/existing",
       "",
       {},
       401,
       "invalid API key",
       {}},
      {"wrong tenant", "team-b", "GET", "/v1/variables/existing", "", {}, 404, "not set", {}},
      {"wrong tenant param",
       "team-b",
       "GET",
       "/v1/variables/existing?tenant=default",
       "",
       {},
       404,
       "",
       {}},
      {"viewer write",
       "viewer",
       "PUT",
       "/v1/variables/existing",
       R"({"value":"x"})",
       {},
       403,
       "read-only",
       {}},
      {"viewer delete", "viewer", "DELETE", "/v1/variables/existing", "", {}, 403, "read-only", {}},
      {"viewer key create",
       "viewer",
       "POST",
       "/v1/keys",
       R"({"name":"x","role":"user"})",
       {},
       403,
       "read-only",
       {}},
      {"user mints admin",
       "team-b",
       "POST",
       "/v1/keys",
       R"({"name":"x","role":"admin"})",
       {},
       403,
       "admin",
       {}},
      {"bad role",
       "admin",
       "POST",
       "/v1/keys",
       R"({"name":"x","role":"root"})",
       {},
       422,
       "",
       {"role"}},
      {"bad key fields",
       "admin",
       "POST",
       "/v1/keys",
       R"({"name":"X Y","role":"user","rate_limit":{"rps":"fast"}})",
       {},
       422,
       "",
       {"rate_limit.rps", "name"}},
      {"keys of another tenant", "team-b", "GET", "/v1/keys?tenant=default", "", {}, 404, "", {}},
      {"unknown route", "admin", "GET", "/v1/nothing", "", {}, 404, "no route", {}},
      {"method not allowed", "admin", "PATCH", "/v1/variables/a", "", {}, 405, "not allowed", {}},
      {"unknown key id", "admin", "DELETE", "/v1/keys/k_nope", "", {}, 404, "no key", {}},
      {"history range too long",
       "admin",
       "GET",
       "/v1/metrics/history?range=48h",
       "",
       {},
       400,
       "range",
       {}},
      {"history range not a duration",
       "viewer",
       "GET",
       "/v1/metrics/history?range=soon",
       "",
       {},
       400,
       "range",
       {}},
      {"history name too long",
       "admin",
       "GET",
       "/v1/metrics/history?name=" + std::string(200, 'n'),
       "",
       {},
       400,
       "name",
       {}},
      {"history of another tenant",
       "team-b",
       "GET",
       "/v1/metrics/history?tenant=default",
       "",
       {},
       404,
       "",
       {}},
      {"dashboard login without a key", "none", "POST", "/v1/ui/open", "", {}, 401, "API key", {}},
      {"dashboard sign-out without the page's header",
       "none",
       "DELETE",
       "/v1/ui/session",
       "",
       {},
       403,
       "X-Drover-UI",
       {}},
      {"forged dashboard session",
       "none",
       "GET",
       "/v1/status",
       "",
       {{"Cookie", "drover_ui=0123456789abcdef"}, {"X-Drover-UI", "1"}},
       401,
       "session",
       {}},
      {"used or unknown login code",
       "none",
       "GET",
       "/ui/?drover_code=nope",
       "",
       {},
       401,
       "drover ui",
       {}},
  };
  // Every known value form, wrong (docs/environments.md): a field error on `value`.
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"cc-a-force-run", "maybe"},
           {"cc-a-interval", "soon"},
           {"cc-a-delay", "-5"},
           {"cc-a-type", "puppet"},
           {"cc-a-desired-capacity", "{\\\"all\\\":"},
           {"cc-a-desired-capacity", "-1"},
           {"cc-w-a-desired-capacity", "{\\\"aws\\\":{\\\"eu\\\":{\\\"x\\\":1}}}"},
           {"cc-a-start", "tomorrow"},
           {"cc-w-a-stop", "2026-13-01T00:00:00Z"},
           {"cc-w-a-start-offset", "3 moments"},
           {"cc-w-s-expression", "every day"},
           {"cc-a-repository", "not a url"},
       }) {
    cases.push_back({"value form " + key + "=" + value,
                     "admin",
                     "PUT",
                     "/v1/variables/" + key,
                     "{\"value\":\"" + value + "\"}",
                     {},
                     422,
                     "",
                     {"value"}});
  }
  std::vector<BadCase> env_cases = {
      {"env malformed yaml",
       "admin",
       "PUT",
       "/v1/environments/sim",
       "spec: [1, 2",
       {{"Content-Type", "application/yaml"}},
       400,
       "malformed YAML",
       {}},
      {"env unknown fields and enums",
       "admin",
       "PUT",
       "/v1/environments/sim",
       R"({"kind":"Environment","name":"sim","spec":{"provider":"cloud","colour":1,)"
       R"("health":{"restart":"sometimes"},"agent":{"interval":"soon"}}})",
       {},
       422,
       "",
       {"spec.agent.interval", "spec.health.restart", "spec.provider", "spec.colour"}},
      {"env name mismatch",
       "admin",
       "PUT",
       "/v1/environments/sim",
       R"({"kind":"Environment","name":"other","spec":{}})",
       {},
       422,
       "",
       {"name"}},
      {"env bad name", "admin", "PUT", "/v1/environments/Sim_1", "{}", {}, 400, "name", {}},
      {"env text body",
       "admin",
       "PUT",
       "/v1/environments/sim",
       "provider=static",
       {{"Content-Type", "text/plain"}},
       415,
       "application/yaml",
       {}},
      {"env of another tenant", "team-b", "GET", "/v1/environments/web", "", {}, 404, "", {}},
      {"viewer writes env",
       "viewer",
       "PUT",
       "/v1/environments/sim",
       "{}",
       {},
       403,
       "read-only",
       {}},
      {"join without token", "none", "POST", "/v1/environments/web/join", "", {}, 401, "", {}},
      {"join with an API key",
       "admin",
       "POST",
       "/v1/environments/web/join",
       "",
       {},
       401,
       "join token",
       {}},
      {"unknown instance",
       "admin",
       "POST",
       "/v1/instances/i-nope/heartbeat",
       "{}",
       {},
       404,
       "no instance",
       {}},
      {"heartbeat wrong types",
       "agent",
       "POST",
       "/v1/instances/INSTANCE/heartbeat",
       R"({"facts":[1],"skipped_runs":-1,"extra":true})",
       {},
       422,
       "",
       {"facts", "skipped_runs", "extra"}},
      {"log lines of the wrong shape",
       "agent",
       "POST",
       "/v1/instances/INSTANCE/logs",
       R"({"lines":[{"at":"now","stream":"bad stream","line":"x","trace_id":"xyz"},7],)"
       R"("dropped":-1})",
       {},
       422,
       "",
       {"dropped", "lines[0].at", "lines[0].stream", "lines[0].trace_id", "lines[1]"}},
      {"log lines not an array",
       "agent",
       "POST",
       "/v1/instances/INSTANCE/logs",
       R"({"lines":"x"})",
       {},
       422,
       "",
       {"lines"}},
      {"logs of another tenant's environment",
       "team-b",
       "GET",
       "/v1/logs?environment=web",
       "",
       {},
       404,
       "",
       {}},
      {"logs with a bad pattern", "admin", "GET", "/v1/logs?q=/(a|b)/", "", {}, 400, "'q'", {}},
      {"logs with a bad time",
       "admin",
       "GET",
       "/v1/logs?since=yesterday",
       "",
       {},
       400,
       "since",
       {}},
      {"logs with a bad trace", "admin", "GET", "/v1/logs?trace=abc", "", {}, 400, "trace", {}},
      {"logs with a bad cursor", "admin", "GET", "/v1/logs?after=x.y", "", {}, 400, "after", {}},
      {"logs with a bad limit", "admin", "GET", "/v1/logs?limit=0", "", {}, 400, "limit", {}},
      {"run report missing fields",
       "agent",
       "POST",
       "/v1/instances/INSTANCE/runs",
       R"({"status":"great","started_at":"yesterday"})",
       {},
       422,
       "",
       {"run_id", "status", "started_at", "finished_at"}},
      {"bad run number", "admin", "GET", "/v1/instances/INSTANCE/runs/x", "", {}, 400, "run", {}},
      {"missing run", "admin", "GET", "/v1/instances/INSTANCE/runs/7", "", {}, 404, "no run", {}},
      {"agent reads variables", "agent", "GET", "/v1/variables", "", {}, 403, "agent", {}},
  };
  cases.insert(cases.end(), env_cases.begin(), env_cases.end());
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.name);
    std::string token = tc.who == "admin"     ? server_->admin_key()
                        : tc.who == "agent"   ? agent_
                        : tc.who == "viewer"  ? viewer_
                        : tc.who == "team-b"  ? team_b_
                        : tc.who == "invalid" ? "drv_not-a-real-key"
                                              : "";
    client::Client c({server_->addr(), token});
    std::string target = tc.target;
    if (auto at = target.find("INSTANCE"); at != std::string::npos) {
      target.replace(at, 8, instance_);
    }
    auto r = c.Do(tc.method, target, tc.body, tc.headers);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, tc.status) << r->body;
    EXPECT_EQ(r->Header("Content-Type"), "application/problem+json");
    auto v = boost::json::parse(r->body);
    EXPECT_EQ(v.at("status").as_int64(), tc.status);
    EXPECT_TRUE(v.at("title").is_string());
    EXPECT_TRUE(v.at("type").is_string());
    std::string detail(v.at("detail").as_string());
    EXPECT_NE(detail.find(tc.detail_has), std::string::npos) << detail;
    std::vector<std::string> fields;
    if (auto* es = v.as_object().if_contains("errors")) {
      for (auto& e : es->as_array()) fields.emplace_back(e.at("field").as_string());
    }
    EXPECT_EQ(fields, tc.fields);
  }
  // Nothing above changed the stored variable.
  auto c = server_->NewClient();
  auto r = c.Do("GET", "/v1/variables/existing");
  EXPECT_EQ(boost::json::parse(r->body).at("value").as_string(), "keep");
  auto list = c.Do("GET", "/v1/variables");
  EXPECT_EQ(boost::json::parse(list->body).at("items").as_array().size(), 1u);
  auto envs = boost::json::parse(c.Do("GET", "/v1/environments")->body).at("items").as_array();
  ASSERT_EQ(envs.size(), 1u);
  EXPECT_EQ(envs[0].at("name").as_string(), "web");
  auto runs = c.Do("GET", "/v1/instances/" + instance_ + "/runs");
  EXPECT_EQ(boost::json::parse(runs->body).at("items").as_array().size(), 0u);
  EXPECT_EQ(c.Do("GET", "/metrics")->body.find("status=\"500\""), std::string::npos);
}

// Raw bytes that are not HTTP get a 400 and a closed connection, never a crash.
TEST_P(BadRequests, GarbageOnTheSocket) {
  for (std::string garbage :
       {std::string("NOT HTTP AT ALL\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        std::string(70000, 'A') + "\r\n\r\n"}) {
    std::string got = RawExchange(PortOf(*server_), garbage);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 4")) << got.substr(0, 80);
  }
  auto c = server_->NewClient();
  EXPECT_EQ(c.Do("GET", "/healthz")->status, 200) << "still serving";
}

// A chunked body has no Content-Length to check up front: it is cut off when it passes the limit.
TEST_P(BadRequests, ChunkedBodyOverTheLimitIs413) {
  std::string req = "PUT /v1/variables/chunky HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                    server_->admin_key() +
                    "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string chunk(64 * 1024, 'x');
  char size[16];
  snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  for (int i = 0; i < 20; ++i) req += size + chunk + "\r\n";  // 1.25 MiB
  req += "0\r\n\r\n";
  std::string got = RawExchange(PortOf(*server_), req);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413")) << got.substr(0, 120);
  auto c = server_->NewClient();
  EXPECT_EQ(c.Do("GET", "/v1/variables/chunky")->status, 404) << "nothing was stored";
}

// Counts the HTTP responses in what a server sent back.
int Responses(const std::string& got) {
  int n = 0;
  for (size_t p = got.find("HTTP/1.1 "); p != std::string::npos; p = got.find("HTTP/1.1 ", p + 1)) {
    ++n;
  }
  return n;
}

// RFC 9112 §6.3: a Transfer-Encoding that does not end in chunked is refused and the connection
// closed; reading such a body by its Content-Length is how a request hidden in it gets served
// (request smuggling behind any proxy that honours Transfer-Encoding).
TEST_P(BadRequests, TransferEncodingThatIsNotChunkedIsRefused) {
  std::string hidden = "GET /v1/variables/existing HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                       server_->admin_key() + "\r\n\r\n";
  std::string body = "{\"value\":\"smuggled\"}" + hidden;
  for (std::string te : {"identity", "gzip", "xchunked", "chunked, identity", "chunked;q=1"}) {
    SCOPED_TRACE(te);
    std::string req = "PUT /v1/variables/smuggle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      server_->admin_key() + "\r\nContent-Type: application/json\r\n" +
                      "Transfer-Encoding: " + te +
                      "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    std::string got = RawExchange(PortOf(*server_), req);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 400")) << got.substr(0, 200);
    EXPECT_EQ(Responses(got), 1) << "the hidden request must not be served:\n" << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos);
  }
  // Codings before chunked are well-formed but not something this server decodes.
  std::string gz = "PUT /v1/variables/smuggle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                   server_->admin_key() + "\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
  EXPECT_TRUE(RawExchange(PortOf(*server_), gz).starts_with("HTTP/1.1 501"));
  auto c = server_->NewClient();
  EXPECT_EQ(c.Do("GET", "/v1/variables/smuggle")->status, 404) << "nothing was stored";
}

// A chunk size that is not hex gets a 400 (not a silent close); absolute-form targets are served.
TEST_P(BadRequests, MalformedChunksAndAbsoluteTargets) {
  std::string req = "PUT /v1/variables/chunky HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                    server_->admin_key() +
                    "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "zz\r\n{}\r\n0\r\n\r\n";
  std::string got = RawExchange(PortOf(*server_), req);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 400")) << got.substr(0, 200);
  EXPECT_NE(got.find("X-Request-Id: "), std::string::npos);
  std::string abs = RawExchange(PortOf(*server_),
                                "GET http://example.com/healthz HTTP/1.1\r\nHost: example.com\r\n"
                                "Connection: close\r\n\r\n");
  EXPECT_TRUE(abs.starts_with("HTTP/1.1 200")) << abs.substr(0, 200);
  std::string abs_query =
      RawExchange(PortOf(*server_),
                  "GET HTTP://example.com/v1/variables?prefix=exist HTTP/1.1\r\nHost: x\r\n"
                  "Authorization: Bearer " +
                      server_->admin_key() + "\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(abs_query.starts_with("HTTP/1.1 200")) << abs_query.substr(0, 200);
  EXPECT_NE(abs_query.find("\"existing\""), std::string::npos) << abs_query;
}

// Requests the transport refuses itself still get a real request id, and the log says which
// method and path they were for.
TEST_P(BadRequests, RefusedRequestsAreLoggedWithTheirIds) {
  std::string big = RawExchange(PortOf(*server_),
                                "PUT /v1/variables/too-big HTTP/1.1\r\nHost: x\r\n"
                                "X-Request-Id: big-one-1\r\nContent-Length: 99999999\r\n\r\n");
  EXPECT_TRUE(big.starts_with("HTTP/1.1 413")) << big.substr(0, 200);
  EXPECT_NE(big.find("X-Request-Id: big-one-1"), std::string::npos) << big;
  std::string bad = RawExchange(PortOf(*server_),
                                "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n");
  EXPECT_TRUE(bad.starts_with("HTTP/1.1 400")) << bad.substr(0, 200);
  auto id_at = bad.find("X-Request-Id: ");
  ASSERT_NE(id_at, std::string::npos) << bad;
  std::string id = bad.substr(id_at + 14, bad.find("\r\n", id_at) - id_at - 14);
  EXPECT_NE(id, "-");
  EXPECT_TRUE(testing::WaitFor([&] {
    std::string log = server_->Log();
    return log.find("PUT") != std::string::npos &&
           log.find("/v1/variables/too-big") != std::string::npos &&
           log.find("big-one-1") != std::string::npos && log.find(id) != std::string::npos;
  })) << server_->Log();
}

// All text is UTF-8 without NUL: bytes that are not get a 400 naming the parameter or field, the
// same on both backends, and nothing about them (or a database's own error text) comes back.
TEST_P(BadRequests, TextThatIsNotUtf8OrHoldsNulIsRefusedAtTheEdge) {
  struct TextCase {
    std::string method, target, body, content_type, field;
    std::string who = "admin";
  };
  std::vector<TextCase> cases = {
      {"GET", "/v1/instances/i-%FF%FE", "", "", "id"},
      {"GET", "/v1/instances/i-%00", "", "", "id"},
      {"DELETE", "/v1/keys/k_%C0%AF", "", "", "id"},
      {"GET", "/v1/variables?prefix=cc-%FF", "", "", "query.prefix"},
      {"GET", "/v1/variables?cursor=%00", "", "", "query.cursor"},
      {"GET", "/v1/environments/web/events?cursor=a%ZZ", "", "", "query.cursor"},
      {"GET", "/v1/variables?x%FF=1", "", "", "query.(name)"},
      {"PUT", "/v1/variables/a", "{\"value\":\"caf\xe9\"}", "application/json", "value"},
      {"PUT", "/v1/variables/a", "{\"value\":\"a\\u0000b\"}", "application/json", "value"},
      {"PUT", "/v1/variables/a", "{\"value\":\"x\",\"environment\":\"\xff\"}", "", "environment"},
      {"PUT", "/v1/environments/sim",
       "kind: Environment\nname: sim\nspec:\n  capacity: 1\n"
       "  agent: {ref: \"\xfe\"}\n",
       "application/yaml", ""},
      {"PUT", "/v1/environments/sim", "spec:\n  agent: {ref: \"a\\0b\"}\n", "application/yaml",
       "spec.agent.ref"},
      {"POST", "/v1/environments/web/join", "{\"hostname\":\"h\xc3\"}", "application/json",
       "hostname", "join"},
      {"POST", "/v1/instances/INSTANCE/heartbeat", "{\"facts\":{\"os\":\"\xff\"}}",
       "application/json", "facts.os", "agent"},
      {"POST", "/v1/instances/INSTANCE/runs",
       "{\"run_id\":\"r\xff\",\"status\":\"ok\",\"started_at\":\"2026-01-01T00:00:00Z\","
       "\"finished_at\":\"2026-01-01T00:00:01Z\"}",
       "application/json", "run_id", "agent"},
  };
  auto admin = server_->NewClient();
  auto env = boost::json::parse(admin.Do("GET", "/v1/environments/web")->body);
  std::string join_token(env.at("status").at("join_token").as_string());
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.method + " " + tc.target + " " + tc.body);
    std::string token = tc.who == "agent"  ? agent_
                        : tc.who == "join" ? join_token
                                           : server_->admin_key();
    client::Client c({server_->addr(), token});
    std::string target = tc.target;
    if (auto at = target.find("INSTANCE"); at != std::string::npos)
      target.replace(at, 8, instance_);
    std::vector<std::pair<std::string, std::string>> headers;
    if (!tc.content_type.empty()) headers.push_back({"Content-Type", tc.content_type});
    auto r = c.Do(tc.method, target, tc.body, headers);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << r->body;
    boost::system::error_code ec;
    auto v = boost::json::parse(r->body, ec);
    ASSERT_FALSE(ec) << "the problem must be valid JSON: " << r->body;
    if (!tc.field.empty()) {
      ASSERT_TRUE(v.as_object().contains("errors")) << r->body;
      EXPECT_EQ(v.at("errors").at(0).at("field").as_string(), tc.field) << r->body;
    }
    for (const char* leak : {"PostgreSQL", "SQLite", "invalid byte sequence", "portal"}) {
      EXPECT_EQ(r->body.find(leak), std::string::npos) << r->body;
    }
  }
  // Nothing was stored: no variable 'a', no environment 'sim', no run.
  EXPECT_EQ(admin.Do("GET", "/v1/variables/a")->status, 404);
  EXPECT_EQ(admin.Do("GET", "/v1/environments/sim")->status, 404);
  auto runs = admin.Do("GET", "/v1/instances/" + instance_ + "/runs");
  EXPECT_EQ(boost::json::parse(runs->body).at("items").as_array().size(), 0u);
}

// A connection that says nothing, or sends half a header, is closed after its timeout: idle
// clients and slowloris-style senders cannot hold connections forever.
TEST(Timeouts, IdleAndSlowHeaderConnectionsAreClosed) {
  TestServer s({"--idle-timeout", "1s", "--header-timeout", "1s"});
  ASSERT_TRUE(s.Start());
  int port = PortOf(s);
  auto closed_within = [&](const std::string& send, int max_ms) {
    int fd = ConnectTo(port);
    if (!send.empty()) {
      EXPECT_GT(write(fd, send.data(), send.size()), 0);
    }
    auto start = std::chrono::steady_clock::now();
    pollfd p{fd, POLLIN, 0};
    bool closed = false;
    while (!closed &&
           std::chrono::steady_clock::now() - start < std::chrono::milliseconds(max_ms)) {
      if (poll(&p, 1, 100) > 0) {
        char buf[512];
        closed = read(fd, buf, sizeof buf) <= 0;
      }
    }
    close(fd);
    return closed;
  };
  EXPECT_TRUE(closed_within("", 15000)) << "idle connection";
  EXPECT_TRUE(closed_within("GET /healthz HTTP/1.1\r\nHost: x\r\n", 15000)) << "half a header";
  auto c = s.NewClient();
  EXPECT_EQ(c.Do("GET", "/healthz")->status, 200) << "still serving";
}

// The header timeout runs from the first byte of a request head: a client that trickles a byte
// now and then (slowloris) is cut off after it, whatever the idle timeout.
TEST(Timeouts, HeaderTimeoutRunsFromTheFirstByte) {
  TestServer s({"--idle-timeout", "60s", "--header-timeout", "1s"});
  ASSERT_TRUE(s.Start());
  int fd = ConnectTo(PortOf(s));
  std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'a');
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (size_t i = 0; i < head.size() && !closed; ++i) {
    if (write(fd, &head[i], 1) != 1) closed = true;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 250) > 0) {
      char buf[512];
      closed = read(fd, buf, sizeof buf) <= 0;
    }
  }
  close(fd);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed) << "a trickling head must be cut off";
  EXPECT_LT(took, std::chrono::seconds(30)) << "well before the idle timeout";
}

// Beyond --max-connections a new connection gets 503 and is closed; the server serves again once
// connections close.
TEST(Limits, ConnectionsBeyondTheCapGet503) {
  TestServer s({"--max-connections", "4"});
  ASSERT_TRUE(s.Start());
  int port = PortOf(s);
  std::vector<int> held;
  for (int i = 0; i < 4; ++i) held.push_back(ConnectTo(port));
  // The held connections are accepted (sessions open) before the extra one arrives.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string got = RawExchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 503")) << got;
  EXPECT_NE(got.find("Retry-After: 1"), std::string::npos) << got;
  EXPECT_NE(got.find("X-Request-Id: "), std::string::npos) << got;
  // The whole problem arrives: exactly Content-Length bytes of valid JSON.
  auto body_at = got.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  std::string body = got.substr(body_at + 4);
  auto cl = got.find("Content-Length: ");
  ASSERT_NE(cl, std::string::npos);
  EXPECT_EQ(std::stoul(got.substr(cl + 16)), body.size()) << got;
  boost::system::error_code ec;
  boost::json::parse(body, ec);
  EXPECT_FALSE(ec) << body;
  for (int fd : held) close(fd);
  auto c = s.NewClient();
  EXPECT_TRUE(testing::WaitFor([&] {
    auto r = c.Do("GET", "/healthz");
    return r.ok() && r->status == 200;
  })) << s.Log();
}

// Out of file descriptors, accept fails: the server backs off instead of spinning, and serves
// again once connections close.
TEST(Limits, OutOfFileDescriptorsIsSurvived) {
  TestServer s({"--threads", "1"});
  s.LimitOpenFiles(64);
  ASSERT_TRUE(s.Start());
  int port = PortOf(s);
  std::vector<int> held;
  for (int i = 0; i < 100; ++i) held.push_back(ConnectTo(port));  // the backlog takes the rest
  EXPECT_TRUE(testing::WaitFor([&] { return s.Log().find("accept failed") != std::string::npos; }))
      << "the server should have run out of descriptors\n"
      << s.Log();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let a busy loop show itself, if any
  for (int fd : held) close(fd);
  std::string log = s.Log();
  size_t lines = 0;
  for (size_t p = log.find("accept failed"); p != std::string::npos;
       p = log.find("accept failed", p + 1)) {
    ++lines;
  }
  EXPECT_LT(lines, 100u) << "accept errors must be retried with a pause, not in a tight loop";
  auto c = s.NewClient();
  EXPECT_TRUE(testing::WaitFor([&] {
    auto r = c.Do("GET", "/healthz");
    return r.ok() && r->status == 200;
  })) << "serving again once descriptors are free\n"
      << s.Log();
}

}  // namespace
}  // namespace drover
