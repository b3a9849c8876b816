// The CLI against a real server: tables by default, -o json for scripts, problems on stderr
// with a non-zero exit.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <sstream>

#include "common/yaml.h"
#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::RunDrover;
using testing::TestServer;

// The CLI's YAML output read back (drover's own YAML reader); fails the test when it is not one
// document.
boost::json::value ParseYamlForTest(const std::string& text) {
  auto v = ParseYaml(text);
  EXPECT_TRUE(v.ok()) << v.status().ToString() << "\n" << text;
  return v.ok() ? *v : boost::json::value();
}

class Cli : public testing::BackendTest {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }
  int Run(std::vector<std::string> args, std::string* out, std::string token = "") {
    std::vector<std::string> env = {
        "DROVER_ADDR=" + server_.addr(),
        "DROVER_TOKEN=" + (token.empty() ? server_.admin_key() : token)};
    return RunDrover(args, out, env);
  }
  const char* Backend() const {
    return GetParam() == testing::Backend::kSqlite ? "sqlite" : "postgres";
  }
  TestServer server_{DbArgs()};
};
DROVER_ON_ALL_BACKENDS(Cli);

TEST_P(Cli, VarSetGetLsRm) {
  std::string out;
  ASSERT_EQ(Run({"var", "set", "cc-a-ref", "main"}, &out), 0) << out;
  EXPECT_NE(out.find("cc-a-ref = main"), std::string::npos) << out;
  ASSERT_EQ(Run({"var", "set", "cc-a-ref", "eu-branch", "--env", "sim-eu"}, &out), 0) << out;
  ASSERT_EQ(Run({"var", "get", "cc-a-ref"}, &out), 0);
  EXPECT_EQ(out, "main\n");
  ASSERT_EQ(Run({"var", "get", "cc-a-ref", "-e", "sim-eu"}, &out), 0);
  EXPECT_EQ(out, "eu-branch\n");
  ASSERT_EQ(Run({"var", "ls", "--prefix", "cc-a-"}, &out), 0);
  EXPECT_NE(out.find("KEY"), std::string::npos);
  EXPECT_NE(out.find("(global)"), std::string::npos);
  EXPECT_NE(out.find("sim-eu"), std::string::npos);
  ASSERT_EQ(Run({"-o", "json", "var", "ls"}, &out), 0);
  auto arr = boost::json::parse(out).as_array();
  EXPECT_EQ(arr.size(), 2u);
  ASSERT_EQ(Run({"var", "rm", "cc-a-ref", "--env", "sim-eu"}, &out), 0) << out;
  EXPECT_NE(Run({"var", "get", "cc-a-ref", "--env", "sim-eu"}, &out), 0);
  EXPECT_NE(out.find("error: variable 'cc-a-ref' is not set in environment 'sim-eu' (HTTP 404)"),
            std::string::npos)
      << out;
}

TEST_P(Cli, VarWatchPrintsEachChange) {
  std::string out;
  ASSERT_EQ(Run({"var", "set", "cc-a-ref", "v0"}, &out), 0) << out;
  auto watch = std::async(std::launch::async, [&] {
    std::string w;
    int rc = Run({"var", "watch", "cc-a-ref", "--count", "2"}, &w);
    return std::make_pair(rc, w);
  });
  // Keep changing the variable until the watcher has seen two changes and exited.
  for (int i = 1; i < 200; ++i) {
    if (watch.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) break;
    std::string o;
    ASSERT_EQ(Run({"var", "set", "cc-a-ref", "v" + std::to_string(i)}, &o), 0) << o;
  }
  ASSERT_EQ(watch.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  auto [rc, w] = watch.get();
  EXPECT_EQ(rc, 0) << w;
  // The state when it started, then two changes, each with its index, values in order.
  std::vector<std::string> lines;
  std::istringstream in(w);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 3u) << w;
  int64_t prev_index = -1, prev_value = -1;
  for (const auto& l : lines) {
    ASSERT_EQ(l.rfind("[index ", 0), 0u) << l;
    int64_t index = std::stoll(l.substr(7));
    int64_t value = std::stoll(l.substr(l.find("= v") + 3));
    EXPECT_GT(index, prev_index) << w;
    EXPECT_GT(value, prev_value) << w;
    prev_index = index;
    prev_value = value;
  }
}

TEST_P(Cli, KeyCreateLsRmAndTheNewKeyWorks) {
  std::string out;
  ASSERT_EQ(Run({"-o", "json", "key", "create", "ci-bot", "--role", "viewer"}, &out), 0) << out;
  auto k = boost::json::parse(out);
  std::string secret(k.at("key").as_string()), id(k.at("id").as_string());
  ASSERT_EQ(Run({"status"}, &out, secret), 0) << out;
  EXPECT_NE(out.find(std::string("store:    ") + Backend()), std::string::npos) << out;
  EXPECT_NE(Run({"var", "set", "a", "b"}, &out, secret), 0);
  EXPECT_NE(out.find("viewer keys are read-only"), std::string::npos) << out;
  ASSERT_EQ(Run({"key", "ls"}, &out), 0);
  EXPECT_NE(out.find("ci-bot"), std::string::npos);
  EXPECT_EQ(out.find(secret), std::string::npos);
  ASSERT_EQ(Run({"key", "rm", id}, &out), 0) << out;
  EXPECT_NE(Run({"status"}, &out, secret), 0);
  EXPECT_NE(out.find("invalid API key"), std::string::npos) << out;
}

TEST_P(Cli, ValidationErrorsListFieldsAndExitNonZero) {
  std::string out;
  EXPECT_EQ(Run({"key", "create", "Bad Name", "--role", "user"}, &out), 1);
  EXPECT_NE(out.find("name: must match"), std::string::npos) << out;
  EXPECT_NE(Run({"key", "create", "x", "--role", "root"}, &out), 0);
  EXPECT_NE(out.find("role: must be one of"), std::string::npos) << out;
}

TEST_P(Cli, AuditShowsCallsNewestFirstWithFilters) {
  std::string out;
  ASSERT_EQ(Run({"var", "set", "cc-a-audited", "x"}, &out), 0) << out;
  ASSERT_EQ(Run({"var", "rm", "cc-a-audited"}, &out), 0) << out;
  ASSERT_EQ(Run({"audit", "--kind", "variable", "--since", "1h"}, &out), 0) << out;
  auto header = out.find("TIME");
  auto removed = out.find("deleted");
  auto set = out.find(" set ");
  ASSERT_NE(header, std::string::npos) << out;
  ASSERT_NE(removed, std::string::npos) << out;
  ASSERT_NE(set, std::string::npos) << out;
  EXPECT_LT(removed, set) << "newest first:\n" << out;
  EXPECT_NE(out.find("accepted"), std::string::npos);
  ASSERT_EQ(Run({"-o", "json", "audit", "--kind", "variable", "--limit", "1"}, &out), 0) << out;
  auto items = boost::json::parse(out).as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].at("op").as_string(), "deleted");
  EXPECT_EQ(items[0].at("name").as_string(), "cc-a-audited");
  // Nothing in the future; bad times and limits are usage errors, before any request.
  ASSERT_EQ(Run({"-o", "json", "audit", "--since", "2199-01-01T00:00:00Z"}, &out), 0) << out;
  EXPECT_TRUE(boost::json::parse(out).as_array().empty()) << out;
  EXPECT_EQ(Run({"audit", "--since", "yesterday"}, &out), 2) << out;
  EXPECT_EQ(Run({"audit", "--limit", "0"}, &out), 2) << out;
}

TEST_P(Cli, UnreachableServerIsAClearError) {
  std::string out;
  int rc = RunDrover({"--addr", "http://127.0.0.1:1", "status"}, &out, {"DROVER_TOKEN=x"});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("cannot connect to http://127.0.0.1:1"), std::string::npos) << out;
}

TEST_P(Cli, StatusJson) {
  std::string out;
  ASSERT_EQ(Run({"status", "-o", "json"}, &out), 0) << out;
  auto v = boost::json::parse(out);
  EXPECT_EQ(v.at("backend").as_string(), Backend());
  EXPECT_TRUE(v.at("index").is_int64());
}

// `drover ui`: a login URL on this server that works once in a browser.
TEST_P(Cli, UiPrintsALoginUrlThatWorksOnce) {
  std::string out;
  ASSERT_EQ(Run({"ui"}, &out), 0) << out;
  std::string prefix = server_.addr() + "/ui/?drover_code=";
  ASSERT_EQ(out.find(prefix), 0u) << out;
  std::string path = out.substr(out.find("/ui/"));
  path = path.substr(0, path.find('\n'));
  client::Client browser({server_.addr(), ""});
  EXPECT_EQ(browser.Do("GET", path)->status, 303);
  EXPECT_EQ(browser.Do("GET", path)->status, 401);
  ASSERT_EQ(Run({"ui", "-o", "json"}, &out), 0) << out;
  auto v = boost::json::parse(out);
  EXPECT_TRUE(v.at("url").as_string().starts_with(prefix)) << out;
  EXPECT_TRUE(v.at("expires_at").is_string());
}

TEST_P(Cli, ApplyEnvironmentsAndVariablesThenEnvCommands) {
  testing::TempDir dir;
  std::ofstream(dir.File("10-env.yaml")) << R"(kind: Environment
name: sim-eu
spec:
  provider: static
  capacity: 2
  agent:
    repository: file:///srv/repos/sim.git
    ref: main
    main_run: ./run.sh
---
kind: Variable
key: cc-a-ref
environment: sim-eu
value: release-2
)";
  std::ofstream(dir.File("20-global.json"))
      << R"({"kind":"Variable","key":"cc-a-delay","value":"5"})";
  std::ofstream(dir.File("notes.txt")) << "not a document";
  std::string out;
  ASSERT_EQ(Run({"apply", "-f", dir.path()}, &out), 0) << out;
  EXPECT_NE(out.find("environment/sim-eu created"), std::string::npos) << out;
  EXPECT_NE(out.find("variable/cc-a-ref (sim-eu) created"), std::string::npos) << out;
  EXPECT_NE(out.find("variable/cc-a-delay created"), std::string::npos) << out;
  // The same documents again change nothing and say so; a changed one is configured.
  auto index_before = server_.NewClient().Do("GET", "/v1/status")->Header("X-Drover-Index");
  ASSERT_EQ(Run({"apply", "-f", dir.File("10-env.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("environment/sim-eu unchanged"), std::string::npos) << out;
  EXPECT_NE(out.find("variable/cc-a-ref (sim-eu) unchanged"), std::string::npos) << out;
  EXPECT_EQ(server_.NewClient().Do("GET", "/v1/status")->Header("X-Drover-Index"), index_before)
      << "an unchanged apply writes nothing";
  std::ofstream(dir.File("11-env-changed.yaml"))
      << "kind: Environment\nname: sim-eu\nspec:\n  provider: static\n  capacity: 2\n"
         "  agent:\n    repository: file:///srv/repos/sim.git\n    ref: main\n"
         "    main_run: ./run.sh\n    interval: 120\n";
  ASSERT_EQ(Run({"-o", "json", "apply", "-f", dir.File("11-env-changed.yaml")}, &out), 0) << out;
  auto applied = boost::json::parse(out);
  EXPECT_EQ(applied.at(0).at("result").as_string(), "configured") << out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("10-env.yaml")}, &out), 0) << out;  // back again
  // The agent: block and the explicit variable meet in the agent view: the variable wins.
  client::Client c({server_.addr(), server_.admin_key()});
  auto view = c.Do("GET", "/v1/cc/agent?environment=sim-eu");
  EXPECT_EQ(view->body, R"({"cc-a-delay":"5","cc-a-main-run":"./run.sh","cc-a-ref":"release-2",)"
                        R"("cc-a-repository":"file:///srv/repos/sim.git"})");
  ASSERT_EQ(Run({"env", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("sim-eu"), std::string::npos) << out;
  EXPECT_NE(out.find("pending"), std::string::npos) << out;
  ASSERT_EQ(Run({"env", "get", "sim-eu"}, &out), 0) << out;
  EXPECT_NE(out.find("join token: djt_"), std::string::npos) << out;
  ASSERT_EQ(Run({"-o", "json", "env", "get", "sim-eu"}, &out), 0) << out;
  std::string token(boost::json::parse(out).at("status").at("join_token").as_string());
  client::Client joiner({server_.addr(), token});
  auto joined = joiner.Do("POST", "/v1/environments/sim-eu/join", R"({"hostname":"box-1"})");
  ASSERT_EQ(joined->status, 201) << joined->body;
  auto j = boost::json::parse(joined->body);
  client::Client agent({server_.addr(), std::string(j.at("agent_key").as_string())});
  std::string id(j.at("instance_id").as_string());
  ASSERT_EQ(agent
                .Do("POST", "/v1/instances/" + id + "/runs",
                    R"({"run_id":"r-1","status":"ok","commit":"abc123","main_exit":0,)"
                    R"("started_at":"2026-11-23T10:00:00Z","finished_at":"2026-11-23T10:00:02Z",)"
                    R"("log_tail":"hello from box-1\n"})")
                ->status,
            201);
  ASSERT_EQ(Run({"env", "instances", "sim-eu"}, &out), 0) << out;
  EXPECT_NE(out.find(id), std::string::npos) << out;
  EXPECT_NE(out.find("box-1"), std::string::npos) << out;
  ASSERT_EQ(Run({"env", "events", "sim-eu"}, &out), 0) << out;
  EXPECT_NE(out.find("joined"), std::string::npos) << out;
  EXPECT_NE(out.find("created"), std::string::npos) << out;
  ASSERT_EQ(Run({"env", "logs", "sim-eu"}, &out), 0) << out;
  EXPECT_NE(out.find("hello from box-1"), std::string::npos) << out;
  EXPECT_NE(out.find("run 1 (ok, commit abc123"), std::string::npos) << out;
  ASSERT_EQ(Run({"env", "rm", "sim-eu"}, &out), 0) << out;
  EXPECT_NE(Run({"env", "get", "sim-eu"}, &out), 0);
  EXPECT_NE(out.find("no environment 'sim-eu'"), std::string::npos) << out;
}

TEST_P(Cli, ApplyScheduleThenScheduleCommands) {
  testing::TempDir dir;
  std::ofstream(dir.File("s.yaml")) << R"(kind: Environment
name: sim
spec: {provider: static, capacity: 1}
---
kind: Schedule
name: weekday-fleet
spec:
  cron: "0 13 * * 1-5"
  timezone: Europe/Berlin
  offset: 3m
  action: {type: scale, environment: sim, capacity: 3}
---
kind: Schedule
name: office-hours
spec:
  window: {environment: sim, start: "0 8 * * 1-5", stop: "0 18 * * 1-5", capacity: 2}
)";
  std::string out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("s.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("schedule/weekday-fleet created"), std::string::npos) << out;
  EXPECT_NE(out.find("schedule/office-hours created"), std::string::npos) << out;
  ASSERT_EQ(Run({"schedule", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("weekday-fleet  0 13 * * 1-5"), std::string::npos) << out;
  EXPECT_NE(out.find("scale sim to 3"), std::string::npos) << out;
  EXPECT_NE(out.find("window sim at 2"), std::string::npos) << out;
  ASSERT_EQ(Run({"schedule", "get", "weekday-fleet"}, &out), 0) << out;
  EXPECT_NE(out.find("(Europe/Berlin, offset 3m)"), std::string::npos) << out;
  // Five fire times, each at 12:03Z (winter) or 11:03Z (summer).
  size_t fires = 0;
  for (size_t p = out.find(":03:00.000Z"); p != std::string::npos;
       p = out.find(":03:00.000Z", p + 1)) {
    ++fires;
  }
  EXPECT_EQ(fires, 5u) << out;
  EXPECT_EQ(out.find('"'), std::string::npos) << "times print bare: " << out;
  ASSERT_EQ(Run({"env", "get", "sim"}, &out), 0) << out;
  EXPECT_NE(out.find("(desired from "), std::string::npos) << out;
  EXPECT_NE(Run({"schedule", "trigger", "office-hours"}, &out), 0);
  EXPECT_NE(out.find("a window has no action to trigger"), std::string::npos) << out;
  ASSERT_EQ(Run({"schedule", "trigger", "weekday-fleet"}, &out), 0) << out;
  EXPECT_NE(out.find("triggered weekday-fleet"), std::string::npos) << out;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        Run({"schedule", "firings", "weekday-fleet"}, &out);
        return out.find("manual") != std::string::npos && out.find(" ok ") != std::string::npos;
      },
      30000))
      << out;
  EXPECT_NE(out.find("sim scaled to 3"), std::string::npos) << out;
  ASSERT_EQ(Run({"schedule", "rm", "weekday-fleet"}, &out), 0) << out;
  EXPECT_NE(Run({"schedule", "get", "weekday-fleet"}, &out), 0);
  EXPECT_NE(out.find("no schedule 'weekday-fleet'"), std::string::npos) << out;
}

TEST_P(Cli, QueuesAndTopicsFromApplyToAck) {
  testing::TempDir dir;
  // The source before its dead-letter queue, and the topic first: apply orders them.
  std::ofstream(dir.File("q.yaml")) << R"(kind: Topic
name: orders
spec:
  subscriptions:
    - queue: jobs
    - queue: eu
      filter: {region: [{prefix: "eu-"}]}
---
kind: Queue
name: jobs
spec: {visibility_timeout: 30s, max_receives: 3, dead_letter_queue: jobs-dlq}
---
kind: Queue
name: jobs-dlq
---
kind: Queue
name: eu
)";
  std::string out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("q.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("queue/jobs-dlq created"), std::string::npos) << out;
  EXPECT_NE(out.find("topic/orders created"), std::string::npos) << out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("q.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("queue/jobs unchanged"), std::string::npos) << out;
  EXPECT_NE(out.find("topic/orders unchanged"), std::string::npos) << out;
  ASSERT_EQ(Run({"queue", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("jobs-dlq"), std::string::npos) << out;

  // Bulk from stdin: one message per line, in batches of 100.
  std::string lines;
  for (int i = 0; i < 250; ++i) lines += "line-" + std::to_string(i) + "\n";
  ASSERT_EQ(testing::RunDroverWithInput(
                {"queue", "send", "jobs"}, lines, &out,
                {"DROVER_ADDR=" + server_.addr(), "DROVER_TOKEN=" + server_.admin_key()}),
            0)
      << out;
  EXPECT_NE(out.find("sent 250 messages"), std::string::npos) << out;
  ASSERT_EQ(Run({"queue", "send", "jobs", "single", "--attr", "k=v"}, &out), 0) << out;
  EXPECT_NE(out.find("sent "), std::string::npos) << out;
  ASSERT_EQ(Run({"queue", "stats", "jobs"}, &out), 0) << out;
  EXPECT_NE(out.find("visible"), std::string::npos) << out;
  EXPECT_EQ(out.find("E-"), std::string::npos) << "ages print as plain numbers: " << out;
  ASSERT_EQ(Run({"-o", "json", "queue", "stats", "jobs"}, &out), 0) << out;
  EXPECT_EQ(boost::json::parse(out).at("visible").as_int64(), 251) << out;

  ASSERT_EQ(Run({"-o", "json", "queue", "recv", "jobs", "--max", "10", "--wait", "1s"}, &out), 0)
      << out;
  auto msgs = boost::json::parse(out).as_array();
  ASSERT_EQ(msgs.size(), 10u);
  EXPECT_EQ(msgs[0].at("body").as_string(), "line-0");
  std::vector<std::string> ack = {"queue", "ack", "jobs"};
  for (const auto& m : msgs) ack.emplace_back(m.at("receipt").as_string());
  ASSERT_EQ(Run(ack, &out), 0) << out;
  EXPECT_NE(out.find("acked 10"), std::string::npos) << out;
  EXPECT_EQ(Run(ack, &out), 1) << "stale the second time: " << out;
  EXPECT_NE(out.find("10 stale"), std::string::npos) << out;

  ASSERT_EQ(Run({"topic", "publish", "orders", "o-1", "--attr", "region=eu-west"}, &out), 0) << out;
  EXPECT_NE(out.find("published to 2 queues"), std::string::npos) << out;
  ASSERT_EQ(Run({"topic", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("eu (filtered)"), std::string::npos) << out;
  ASSERT_EQ(Run({"-o", "json", "queue", "recv", "eu"}, &out), 0) << out;
  EXPECT_EQ(boost::json::parse(out).as_array()[0].at("body").as_string(), "o-1");

  ASSERT_EQ(Run({"queue", "purge", "jobs"}, &out), 0) << out;
  EXPECT_NE(out.find("purged 242"), std::string::npos) << out;
  EXPECT_EQ(Run({"queue", "rm", "jobs-dlq"}, &out), 1) << "jobs uses it: " << out;
  EXPECT_NE(out.find("dead-letter queue of 'jobs'"), std::string::npos) << out;
  ASSERT_EQ(Run({"topic", "unsubscribe", "orders", "eu"}, &out), 0) << out;
  ASSERT_EQ(Run({"topic", "rm", "orders"}, &out), 0) << out;
  ASSERT_EQ(Run({"queue", "rm", "jobs"}, &out), 0) << out;
  ASSERT_EQ(Run({"queue", "rm", "jobs-dlq"}, &out), 0) << out;
  // Usage errors exit 2 before sending anything.
  EXPECT_EQ(Run({"queue", "recv", "eu", "--max", "11"}, &out), 2) << out;
  EXPECT_EQ(Run({"queue", "send", "eu", "x", "--attr", "novalue"}, &out), 2) << out;
  EXPECT_EQ(Run({"topic", "subscribe", "t", "eu", "--filter", "[1]"}, &out), 2) << out;
}

TEST_P(Cli, ApplyRefusesBadDocumentsBeforeChangingAnything) {
  testing::TempDir dir;
  std::ofstream(dir.File("a.yaml")) << "kind: Environment\nname: ok-env\nspec: {provider: static}\n"
                                       "---\nkind: Gadget\nname: x\n";
  std::string out;
  EXPECT_EQ(Run({"apply", "-f", dir.File("a.yaml")}, &out), 1);
  EXPECT_NE(out.find("kind must be Environment, Schedule, Variable, Queue, Topic, Workflow, Route "
                     "or Alert, not "
                     "'Gadget'"),
            std::string::npos)
      << out;
  EXPECT_NE(Run({"env", "get", "ok-env"}, &out), 0) << "nothing applied";
  std::ofstream(dir.File("b.yaml")) << "kind: Environment\nname: bad\nspec: {provider: cloud}\n";
  EXPECT_EQ(Run({"apply", "-f", dir.File("b.yaml")}, &out), 1);
  EXPECT_NE(out.find("spec.provider: must be one of local, exec, static"), std::string::npos)
      << out;
  EXPECT_EQ(Run({"apply", "-f", dir.File("missing.yaml")}, &out), 1);
  EXPECT_NE(out.find("cannot read"), std::string::npos) << out;
}

TEST_P(Cli, KeyGenSigningWritesAPairOnceAndTheServerSigns) {
  testing::TempDir dir;
  std::string out;
  ASSERT_EQ(RunDrover({"key", "gen-signing", dir.File("cc")}, &out), 0) << out;
  EXPECT_NE(RunDrover({"key", "gen-signing", dir.File("cc")}, &out), 0);
  EXPECT_NE(out.find("not overwriting"), std::string::npos) << out;
  struct stat st {};
  ASSERT_EQ(stat(dir.File("cc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  TestServer signer({"--signing-key", dir.File("cc")});
  ASSERT_TRUE(signer.Start());
  auto c = signer.NewClient();
  auto r = c.Do("GET", "/v1/cc/agent");
  EXPECT_EQ(r->Header("X-Drover-Signature").rfind("v1; index=", 0), 0u)
      << r->Header("X-Drover-Signature");
  EXPECT_NE(
      RunDrover({"server", "--signing-key", dir.File("cc.pub"), "--data-dir", dir.path()}, &out),
      0);
  EXPECT_NE(out.find("not a PEM ed25519 private key"), std::string::npos) << out;
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Every usage error exits 2 with a message that says what is wrong and a usage line that names
// the program; nothing changes before every argument is checked.
TEST_P(Cli, UsageErrorsExit2AndChangeNothing) {
  std::string out;
  auto admin = server_.NewClient();
  ASSERT_EQ(
      admin.Do("PUT", "/v1/environments/sim", R"({"provider":"static","capacity":1})")->status,
      201);
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {{"lss"}, "unknown command 'lss' for 'drover'"},
           {{"env", "lss"}, "unknown command 'lss' for 'drover env' (did you mean 'ls'?)"},
           {{"sched", "ls"}, "did you mean 'schedule'?"},
           {{"env"}, "'drover env' needs a command: ls, get"},
           {{"env", "scale", "sim", "-1"}, "capacity must be a whole number >= 0, got '-1'"},
           {{"env", "scale", "sim", "2", "--wait", "5"}, "--wait takes a duration"},
           {{"env", "scale", "sim"}, "Usage: drover env scale [OPTIONS] name capacity"},
           {{"env", "logs", "sim", "--run", "3"}, "--run needs --instance"},
           {{"env", "instances"}, "give the environment"},
           {{"var", "ls", "--effective"}, "--effective needs --env"},
           {{"-o", "xml", "env", "ls"}, "xml"},
       }) {
    SCOPED_TRACE(::testing::PrintToString(c.args));
    EXPECT_EQ(Run(c.args, &out), 2) << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << out;
  }
  auto env = boost::json::parse(admin.Do("GET", "/v1/environments/sim")->body);
  EXPECT_TRUE(env.at("scale_capacity").is_null()) << "a refused command scaled nothing";
  // Help is not an error; it names the whole command.
  EXPECT_EQ(Run({"env", "scale", "--help"}, &out), 0);
  EXPECT_NE(out.find("Usage: drover env scale"), std::string::npos) << out;
  // A missing key says where a key comes from.
  EXPECT_EQ(RunDrover({"env", "ls"}, &out, {"DROVER_ADDR=" + server_.addr()}), 2);
  EXPECT_NE(out.find("DROVER_TOKEN"), std::string::npos) << out;
  EXPECT_NE(out.find("--token"), std::string::npos) << out;
  // Not found is a failure of the command, not of its usage.
  EXPECT_EQ(Run({"env", "logs", "sim", "--instance", "i-nope"}, &out), 1);
  EXPECT_NE(out.find("no instance 'i-nope'"), std::string::npos) << out;
}

// -o json and -o yaml on every command, so scripts never parse sentences; --wait bare or with
// a duration.
TEST_P(Cli, EveryCommandSpeaksJsonAndYaml) {
  testing::TempDir dir;
  std::ofstream(dir.File("a.yaml")) << "kind: Environment\nname: web\nspec: {provider: static, "
                                       "capacity: 0, agent: {ref: main}}\n---\nkind: Variable\n"
                                       "key: cc-a-ref\nenvironment: web\nvalue: \"007\"\n";
  std::string out;
  ASSERT_EQ(Run({"-o", "json", "apply", "-f", dir.File("a.yaml")}, &out), 0) << out;
  auto applied = boost::json::parse(out);
  EXPECT_EQ(applied.at(0).at("result").as_string(), "created");
  EXPECT_EQ(applied.at(1).at("kind").as_string(), "Variable");
  ASSERT_EQ(Run({"-o", "yaml", "apply", "-f", dir.File("a.yaml")}, &out), 0) << out;
  auto again = ParseYamlForTest(out);
  EXPECT_EQ(again.at(0).at("result").as_string(), "unchanged") << out;
  ASSERT_EQ(Run({"-o", "yaml", "var", "ls", "--effective", "--env", "web"}, &out), 0) << out;
  auto effective = ParseYamlForTest(out);
  EXPECT_EQ(effective.at("cc-a-ref").as_string(), "007") << "a string that reads as a number";
  ASSERT_EQ(Run({"var", "ls", "--effective", "--env", "web"}, &out), 0) << out;
  EXPECT_NE(out.find("cc-a-ref  007"), std::string::npos) << out;
  ASSERT_EQ(Run({"-o", "json", "env", "scale", "web", "0"}, &out), 0) << out;
  EXPECT_EQ(boost::json::parse(out).at("name").as_string(), "web");
  ASSERT_EQ(Run({"env", "scale", "web", "0", "--wait"}, &out), 0) << out;
  EXPECT_NE(out.find("0/0 running, phase stopped"), std::string::npos) << out;
  ASSERT_EQ(Run({"env", "scale", "web", "0", "--wait=30s"}, &out), 0) << out;
  EXPECT_NE(out.find("scaled to 0"), std::string::npos) << out;
  ASSERT_EQ(Run({"-o", "json", "env", "instances", "web"}, &out), 0) << out;
  EXPECT_TRUE(boost::json::parse(out).as_array().empty()) << out;
  ASSERT_EQ(Run({"-o", "json", "var", "rm", "cc-a-ref", "-e", "web"}, &out), 0) << out;
  EXPECT_EQ(boost::json::parse(out).at("result").as_string(), "deleted");
  ASSERT_EQ(Run({"-o", "yaml", "env", "rm", "web"}, &out), 0) << out;
  EXPECT_EQ(ParseYamlForTest(out).at("name").as_string(), "web");
}

// Admin keys act in another tenant with --tenant, as the API's ?tenant=.
TEST_P(Cli, AdminsActInAnotherTenant) {
  testing::TempDir dir;
  std::ofstream(dir.File("e.yaml"))
      << "kind: Environment\nname: theirs\nspec: {provider: static}\n";
  std::string out;
  ASSERT_EQ(Run({"--tenant", "team-b", "apply", "-f", dir.File("e.yaml")}, &out), 0) << out;
  ASSERT_EQ(Run({"--tenant", "team-b", "env", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("theirs"), std::string::npos) << out;
  ASSERT_EQ(Run({"env", "ls"}, &out), 0) << out;
  EXPECT_EQ(out.find("theirs"), std::string::npos) << "not in the admin's own tenant: " << out;
  auto key =
      server_.NewClient().Do("POST", "/v1/keys", R"({"name":"b","role":"user","tenant":"team-b"})");
  std::string user(boost::json::parse(key->body).at("key").as_string());
  EXPECT_EQ(Run({"--tenant", "default", "env", "ls"}, &out, user), 1);
  EXPECT_NE(out.find("no such tenant"), std::string::npos) << out;
}

// A schedule may name an environment that comes later: accepted, with a warning.
TEST_P(Cli, ASchedulesEnvironmentMayComeLater) {
  testing::TempDir dir;
  std::ofstream(dir.File("s.yaml"))
      << "kind: Schedule\nname: nightly\nspec: {cron: \"0 2 * * *\", timezone: Europe/Berlin, "
         "action: {type: stop, environment: later}}\n";
  std::string out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("s.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("schedule/nightly created"), std::string::npos) << out;
  EXPECT_NE(out.find("warning: environment 'later' does not exist (yet)"), std::string::npos)
      << out;
  ASSERT_EQ(Run({"schedule", "get", "nightly"}, &out), 0) << out;
  // Fire times in the schedule's own zone: 02:00 on Berlin's clock (CET or CEST).
  EXPECT_NE(out.find(" 02:00:00 CE"), std::string::npos) << out;
}

TEST_P(Cli, RoutesFromApplyToListAndRemove) {
  testing::TempDir dir;
  std::ofstream(dir.File("r.yaml")) << R"(kind: Route
name: api
spec:
  upstreams: ["http://127.0.0.1:1", "http://127.0.0.1:2/base"]
  auth: none
  retries: 0
)";
  std::string out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("r.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("route/api created"), std::string::npos) << out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("r.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("route/api unchanged"), std::string::npos) << out;
  ASSERT_EQ(Run({"route", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("http://127.0.0.1:1,http://127.0.0.1:2/base"), std::string::npos) << out;
  EXPECT_NE(out.find("none"), std::string::npos) << out;
  // Once proxied through, this server knows the upstreams' health.
  client::Client anon = server_.NewClient();
  EXPECT_EQ(anon.Do("GET", "/svc/api/x")->status, 502);
  ASSERT_EQ(Run({"route", "get", "api"}, &out), 0) << out;
  EXPECT_NE(out.find("UPSTREAM"), std::string::npos) << out;
  EXPECT_NE(out.find("http://127.0.0.1:2/base"), std::string::npos) << out;
  std::ofstream(dir.File("bad.yaml")) << "kind: Route\nname: bad\nspec: {upstreams: [ftp://x]}\n";
  EXPECT_EQ(Run({"apply", "-f", dir.File("bad.yaml")}, &out), 1) << out;
  EXPECT_NE(out.find("upstreams[0]"), std::string::npos) << out;
  ASSERT_EQ(Run({"route", "rm", "api"}, &out), 0) << out;
  EXPECT_NE(Run({"route", "get", "api"}, &out), 0) << out;
}

TEST_P(Cli, AlertsFromApplyToListAndRemove) {
  testing::TempDir dir;
  std::ofstream(dir.File("a.yaml")) << R"(kind: Alert
name: orders-dlq
spec:
  signal: 'drover_queue_messages{queue="orders-dlq", state="visible"}'
  condition: {threshold: "> 0"}
  for: 5m
  severity: critical
  annotations: {summary: "{{labels.queue}} has {{value}} messages"}
)";
  std::string out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("a.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("alert/orders-dlq created"), std::string::npos) << out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("a.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("alert/orders-dlq unchanged"), std::string::npos) << out;
  ASSERT_EQ(Run({"alert", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("orders-dlq"), std::string::npos) << out;
  EXPECT_NE(out.find("> 0"), std::string::npos) << out;
  EXPECT_NE(out.find("critical"), std::string::npos) << out;
  ASSERT_EQ(Run({"alert", "get", "orders-dlq"}, &out), 0) << out;
  EXPECT_NE(out.find(R"(state=\"visible\")"), std::string::npos) << out;
  ASSERT_EQ(Run({"alert", "history", "orders-dlq"}, &out), 0) << out;
  EXPECT_NE(out.find("TRANSITION"), std::string::npos) << out;
  ASSERT_EQ(Run({"alert", "silence", "orders-dlq", "--for", "2h", "--comment", "deploy"}, &out), 0)
      << out;
  EXPECT_NE(out.find("silenced until"), std::string::npos) << out;
  ASSERT_EQ(Run({"alert", "silence", "orders-dlq", "--lift"}, &out), 0) << out;
  EXPECT_NE(Run({"alert", "silence", "orders-dlq", "--lift"}, &out), 0) << out;
  std::ofstream(dir.File("bad.yaml"))
      << "kind: Alert\nname: bad\nspec: {signal: 'm{a=b}', condition: {threshold: '>> 1'}}\n";
  EXPECT_EQ(Run({"apply", "-f", dir.File("bad.yaml")}, &out), 1) << out;
  EXPECT_NE(out.find("signal"), std::string::npos) << out;
  EXPECT_NE(out.find("condition.threshold"), std::string::npos) << out;
  ASSERT_EQ(Run({"alert", "rm", "orders-dlq"}, &out), 0) << out;
  EXPECT_NE(Run({"alert", "get", "orders-dlq"}, &out), 0) << out;
}

TEST_P(Cli, WorkflowsFromApplyToRunAndEvents) {
  testing::TempDir dir;
  std::ofstream(dir.File("wf.yaml")) << R"(kind: Workflow
name: greet
spec:
  steps:
    - {name: nap, type: sleep, duration: 10ms}
    - {name: approve, type: wait, signal: ok, timeout: 1m}
---
kind: Workflow
name: quick
spec:
  steps:
    - {name: nap, type: sleep, duration: 10ms}
)";
  std::string out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("wf.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("workflow/greet created"), std::string::npos) << out;
  ASSERT_EQ(Run({"apply", "-f", dir.File("wf.yaml")}, &out), 0) << out;
  EXPECT_NE(out.find("workflow/greet unchanged"), std::string::npos) << out;
  ASSERT_EQ(Run({"wf", "ls"}, &out), 0) << out;
  EXPECT_NE(out.find("greet"), std::string::npos) << out;
  ASSERT_EQ(Run({"wf", "get", "greet"}, &out), 0) << out;
  EXPECT_NE(out.find("approve"), std::string::npos) << out;

  // --wait follows the execution to its end; the exit code says how it ended.
  ASSERT_EQ(Run({"wf", "run", "quick", "--input", R"({"who":"ann"})", "--wait=60s"}, &out), 0)
      << out;
  EXPECT_NE(out.find("nap: succeeded"), std::string::npos) << out;
  EXPECT_NE(out.find("succeeded"), std::string::npos) << out;

  // A waiting execution, its signal, and its events.
  ASSERT_EQ(Run({"wf", "run", "greet", "-o", "json"}, &out), 0) << out;
  std::string id(boost::json::parse(out).at("id").as_string());
  ASSERT_TRUE(testing::WaitFor([&] {
    std::string got;
    return Run({"exec", "get", id}, &got) == 0 && got.find("running") != std::string::npos;
  }));
  ASSERT_EQ(Run({"exec", "signal", id, "ok", "--payload", R"({"by":"me"})"}, &out), 0) << out;
  ASSERT_EQ(Run({"exec", "events", id, "-f"}, &out), 0) << out;
  EXPECT_NE(out.find("execution_created"), std::string::npos) << out;
  EXPECT_NE(out.find("signal_received ok"), std::string::npos) << out;
  EXPECT_NE(out.find("execution_succeeded"), std::string::npos) << out;
  ASSERT_EQ(Run({"exec", "ls", "--workflow", "greet"}, &out), 0) << out;
  EXPECT_NE(out.find(id), std::string::npos) << out;
  EXPECT_EQ(Run({"exec", "cancel", id}, &out), 1) << out;  // it has ended
  ASSERT_EQ(Run({"admin", "rebuild"}, &out), 0) << out;
  EXPECT_NE(out.find("rebuilt 2 executions"), std::string::npos) << out;

  // Bad input is a usage error (exit 2), sent nowhere.
  EXPECT_EQ(Run({"wf", "run", "quick", "--input", "{not json"}, &out), 2) << out;
  EXPECT_EQ(Run({"wf", "run", "nope"}, &out), 1) << out;
  ASSERT_EQ(Run({"wf", "rm", "quick"}, &out), 0) << out;
}

}  // namespace
}  // namespace drover
