// The agent end to end: a real server, real `drover agent` processes, real Git repositories,
// real sh and ansible-playbook.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/clock.h"
#include "common/files.h"
#include "testing/fixed_http.h"
#include "testing/git_repo.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::GitRepo;
using testing::TempDir;
using testing::TestProcess;
using testing::TestServer;
using testing::WaitFor;

boost::json::value Json(const std::string& s) { return boost::json::parse(s); }

std::string Str(const boost::json::value& v, std::string_view k) {
  const auto* f = v.as_object().if_contains(k);
  if (!f || f->is_null()) return "";
  return f->is_string() ? std::string(f->as_string()) : boost::json::serialize(*f);
}

bool FileExists(const std::string& p) { return std::filesystem::exists(p); }

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }

  client::Client Admin() { return server_.NewClient(); }

  // Creates environment `name` (static provider) with the given agent: block; returns its join
  // token.
  std::string CreateEnv(const std::string& name, boost::json::object agent) {
    boost::json::object doc{{"kind", "Environment"},
                            {"name", name},
                            {"spec",
                             {{"provider", "static"},
                              {"capacity", 2},
                              {"agent", std::move(agent)},
                              {"health", {{"heartbeat_interval", "1s"}}}}}};
    auto c = Admin();
    auto r = c.Do("PUT", "/v1/environments/" + name, boost::json::serialize(doc));
    EXPECT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().message());
    return r.ok() ? Str(Json(r->body), "join_token") : "";
  }

  void PutVar(const std::string& key, const std::string& value, const std::string& env) {
    auto c = Admin();
    boost::json::object body{{"value", value}, {"environment", env}};
    auto r = c.Do("PUT", "/v1/variables/" + key, boost::json::serialize(body));
    ASSERT_TRUE(r.ok() && r->ok()) << (r.ok() ? r->body : r.status().message());
  }

  std::vector<std::string> AgentArgs(const std::string& env, const std::string& token,
                                     const std::string& work, bool once,
                                     std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {
        "agent", "--server",   server_.addr(), "--join-token", token, "--environment",
        env,     "--work-dir", work,           "--kill-grace", "1s"};
    if (once) a.push_back("--once");
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  std::unique_ptr<TestProcess> StartAgent(const std::string& env, const std::string& token,
                                          const std::string& work, bool once = false,
                                          std::vector<std::string> extra = {}) {
    return std::make_unique<TestProcess>(AgentArgs(env, token, work, once, std::move(extra)),
                                         work + ".log", AgentEnv());
  }

  // A HOME of its own, so ansible's temp and cache dirs stay inside the test's temp dir.
  std::vector<std::string> AgentEnv() { return {"HOME=" + dir_.path(), "ANSIBLE_NOCOLOR=1"}; }

  // Instances of `env`; terminated ones (agents that left) too with `all`.
  boost::json::array Instances(const std::string& env, bool all = false) {
    auto c = Admin();
    auto r = c.Do("GET", "/v1/environments/" + env + "/instances" + (all ? "?all=true" : ""));
    if (!r.ok() || r->status != 200) return {};
    return Json(r->body).at("items").as_array();
  }

  // Runs of `instance`, newest first, with log tails.
  std::vector<boost::json::value> Runs(const std::string& instance) {
    auto c = Admin();
    std::vector<boost::json::value> out;
    auto r = c.Do("GET", "/v1/instances/" + instance + "/runs?limit=100");
    if (!r.ok() || r->status != 200) return out;
    auto page = Json(r->body);
    for (const auto& run : page.at("items").as_array()) {
      auto full = c.Do("GET", "/v1/instances/" + instance + "/runs/" + Str(run, "seq"));
      if (full.ok() && full->status == 200) out.push_back(Json(full->body));
    }
    return out;
  }

  // The only instance of `env`, whatever its state (waits for the join).
  std::string OnlyInstance(const std::string& env) {
    std::string id;
    WaitFor(
        [&] {
          auto all = Instances(env, true);
          if (all.size() == 1) id = Str(all[0], "id");
          return !id.empty();
        },
        30000);
    return id;
  }

  // The newest run of the instance once there are `count` runs; null when none came.
  boost::json::value WaitForRuns(const std::string& instance, size_t count) {
    std::vector<boost::json::value> runs;
    WaitFor(
        [&] {
          runs = Runs(instance);
          return runs.size() >= count;
        },
        60000);
    return runs.size() >= count ? runs.front() : boost::json::value();
  }

  TempDir dir_;
  TestServer server_;
  GitRepo repo_;
};

TEST_F(AgentTest, TwoAgentsRunTheNewCommitSoonAfterAChange) {
  std::string c1 = repo_.Commit({{"run.sh", "#!/bin/sh\necho \"tag=$CC_A_BUILD_TAG v1\"\n"}}, "v1");
  ASSERT_FALSE(c1.empty());
  std::string token = CreateEnv("sim", {{"repository", repo_.url()},
                                        {"ref", "main"},
                                        {"main_run", "./run.sh"},
                                        {"interval", 3600},
                                        {"vars", {{"build-tag", "b7"}}}});
  auto a1 = StartAgent("sim", token, dir_.File("a1"));
  auto a2 = StartAgent("sim", token, dir_.File("a2"));
  std::vector<std::string> ids;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto all = Instances("sim");
        ids.clear();
        for (const auto& i : all) {
          if (Str(i, "state") == "running") ids.push_back(Str(i, "id"));
        }
        return ids.size() == 2;
      },
      30000))
      << a1->Log() << a2->Log();
  for (const auto& id : ids) {
    auto run = WaitForRuns(id, 1);
    ASSERT_FALSE(run.is_null()) << a1->Log() << a2->Log();
    EXPECT_EQ(Str(run, "status"), "ok");
    EXPECT_EQ(Str(run, "commit"), c1);
    EXPECT_EQ(Str(run, "main_exit"), "0");
    EXPECT_NE(Str(run, "log_tail").find("tag=b7 v1"), std::string::npos) << Str(run, "log_tail");
  }
  // A new commit and a changed cc-a-main-run: both agents wake (blocking query) and run it long
  // before their hour-long interval.
  std::string c2 =
      repo_.Commit({{"run.sh", "#!/bin/sh\necho \"tag=$CC_A_BUILD_TAG v2 $1\"\n"}}, "v2");
  auto changed = std::chrono::steady_clock::now();
  PutVar("cc-a-main-run", "./run.sh changed", "sim");
  for (const auto& id : ids) {
    auto run = WaitForRuns(id, 2);
    ASSERT_FALSE(run.is_null()) << a1->Log() << a2->Log();
    EXPECT_EQ(Str(run, "status"), "ok");
    EXPECT_EQ(Str(run, "commit"), c2);
    EXPECT_NE(Str(run, "log_tail").find("tag=b7 v2 changed"), std::string::npos)
        << Str(run, "log_tail");
  }
  auto took = std::chrono::steady_clock::now() - changed;
  EXPECT_LT(took, std::chrono::seconds(30)) << "agents must not wait for their interval";
  // The environment's status shows each instance's last run; its events show the joins.
  auto c = Admin();
  auto env = Json(c.Do("GET", "/v1/environments/sim")->body);
  for (const auto& i : env.at("status").at("instances").as_array()) {
    EXPECT_EQ(Str(i.at("last_run"), "commit"), c2);
    EXPECT_EQ(Str(i.at("last_run"), "exit_code"), "0");
  }
  auto events = c.Do("GET", "/v1/environments/sim/events")->body;
  EXPECT_NE(events.find("\"joined\""), std::string::npos) << events;
  EXPECT_EQ(a1->Stop(), 0) << a1->Log();
  EXPECT_EQ(a2->Stop(), 0) << a2->Log();
}

TEST_F(AgentTest, UnchangedCommitIsSkippedAndForceRunRunsIt) {
  std::string c1 = repo_.Commit({{"run.sh", "#!/bin/sh\necho ran >> \"$OUT\"\n"}}, "v1");
  std::string out = dir_.File("ran.txt");
  std::string token =
      CreateEnv("once", {{"repository", repo_.url()}, {"main_run", "OUT=" + out + " ./run.sh"}});
  std::string work = dir_.File("w");
  auto run_once = [&] {
    TestProcess p(AgentArgs("once", token, work, true), work + ".log", AgentEnv());
    return p.Wait(120000);
  };
  ASSERT_EQ(run_once(), 0);
  ASSERT_EQ(run_once(), 0);
  std::string id = OnlyInstance("once");
  auto runs = Runs(id);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(Str(runs[1], "status"), "ok");
  EXPECT_EQ(Str(runs[0], "status"), "skipped");
  EXPECT_EQ(Str(runs[0], "commit"), c1);
  PutVar("cc-a-force-run", "yes", "once");
  ASSERT_EQ(run_once(), 0);
  runs = Runs(id);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(Str(runs[0], "status"), "ok");
  std::ifstream f(out);
  std::string all((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(all, "ran\nran\n");
}

TEST_F(AgentTest, AnsiblePlaybookRunsLocally) {
  std::string target = dir_.File("from-ansible.txt");
  repo_.Commit({{"site.yml",
                 "- hosts: localhost\n"
                 "  gather_facts: false\n"
                 "  tasks:\n"
                 "    - copy:\n"
                 "        dest: \"{{ lookup('env', 'CC_A_TARGET') }}\"\n"
                 "        content: \"written by ansible\\n\"\n"}},
               "playbook");
  std::string token = CreateEnv("ans", {{"repository", repo_.url()},
                                        {"type", "ansible"},
                                        {"main_run", "site.yml"},
                                        {"vars", {{"target", target}}}});
  TestProcess p(AgentArgs("ans", token, dir_.File("w"), true), dir_.File("w.log"), AgentEnv());
  ASSERT_EQ(p.Wait(180000), 0) << p.Log();
  std::ifstream f(target);
  std::string content((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(content, "written by ansible\n");
  auto run = WaitForRuns(OnlyInstance("ans"), 1);
  EXPECT_NE(Str(run, "log_tail").find("ansible-playbook"), std::string::npos)
      << Str(run, "log_tail");
}

TEST_F(AgentTest, PreFailureSkipsMainRunsPostAndReportsTheFailure) {
  repo_.Commit({{"run.sh", "#!/bin/sh\ntouch \"$1\"\n"}}, "v1");
  std::string post_marker = dir_.File("post-ran"), main_marker = dir_.File("main-ran");
  std::string token = CreateEnv("pre", {{"repository", repo_.url()},
                                        {"pre_run", "echo checking; exit 3"},
                                        {"main_run", "./run.sh " + main_marker},
                                        {"post_run", "touch " + post_marker}});
  TestProcess p(AgentArgs("pre", token, dir_.File("w"), true), dir_.File("w.log"), AgentEnv());
  EXPECT_EQ(p.Wait(120000), 1) << p.Log();  // --once exits 1 for a failed run
  auto run = WaitForRuns(OnlyInstance("pre"), 1);
  EXPECT_EQ(Str(run, "status"), "failed");
  EXPECT_EQ(Str(run, "pre_exit"), "3");
  EXPECT_EQ(Str(run, "main_exit"), "");
  EXPECT_EQ(Str(run, "post_exit"), "0");
  EXPECT_NE(Str(run, "reason").find("pre exited 3"), std::string::npos) << Str(run, "reason");
  EXPECT_TRUE(FileExists(post_marker));
  EXPECT_FALSE(FileExists(main_marker));
  // A failed run is an environment event.
  auto c = Admin();
  EXPECT_NE(c.Do("GET", "/v1/environments/pre/events")->body.find("run-failed"), std::string::npos);
}

TEST_F(AgentTest, ARunOverItsTimeoutIsKilledWithItsChildren) {
  std::string pid_file = dir_.File("child.pid");
  repo_.Commit({{"run.sh", "#!/bin/sh\nsleep 300 &\necho $! > \"$PIDFILE\"\nsleep 300\n"}}, "v1");
  std::string token = CreateEnv("slow", {{"repository", repo_.url()},
                                         {"main_run", "PIDFILE=" + pid_file + " ./run.sh"},
                                         {"vars", {{"timeout", "2s"}}}});
  TestProcess p(AgentArgs("slow", token, dir_.File("w"), true), dir_.File("w.log"), AgentEnv());
  EXPECT_EQ(p.Wait(120000), 1) << p.Log();
  auto run = WaitForRuns(OnlyInstance("slow"), 1);
  EXPECT_EQ(Str(run, "status"), "failed");
  EXPECT_NE(Str(run, "reason").find("timed out"), std::string::npos) << Str(run, "reason");
  std::ifstream f(pid_file);
  pid_t child = 0;
  ASSERT_TRUE(f >> child);
  EXPECT_TRUE(WaitFor([&] { return ::kill(child, 0) != 0; }, 10000))
      << "the run's background child survived the timeout";
}

TEST_F(AgentTest, ASecondOnceDuringARunIsSkippedNotKilled) {
  std::string started = dir_.File("started");
  std::string release = dir_.File("release");
  repo_.Commit({{"run.sh",
                 "#!/bin/sh\ntouch \"$STARTED\"\nwhile [ ! -e \"$RELEASE\" ]; do sleep "
                 "0.05; done\necho first-finished\n"}},
               "v1");
  std::string token =
      CreateEnv("lock", {{"repository", repo_.url()},
                         {"main_run", "STARTED=" + started + " RELEASE=" + release + " ./run.sh"}});
  std::string work = dir_.File("w");
  TestProcess first(AgentArgs("lock", token, work, true), work + ".1.log", AgentEnv());
  ASSERT_TRUE(WaitFor([&] { return FileExists(started); }, 60000)) << first.Log();
  // Heartbeats go on during the run (their own thread) and show it as the current run.
  std::string id = OnlyInstance("lock");
  EXPECT_TRUE(WaitFor(
      [&] {
        auto all = Instances("lock");
        return !all.empty() && all[0].at("current_run").is_object() &&
               Str(all[0].at("current_run"), "step") == "main";
      },
      30000))
      << first.Log();
  TestProcess second(AgentArgs("lock", token, work, true), work + ".2.log", AgentEnv());
  EXPECT_EQ(second.Wait(60000), 0) << second.Log();
  EXPECT_NE(second.Log().find("skipped"), std::string::npos) << second.Log();
  std::ofstream(release) << "go";
  EXPECT_EQ(first.Wait(60000), 0) << first.Log();
  auto run = WaitForRuns(id, 1);
  EXPECT_EQ(Str(run, "status"), "ok");
  EXPECT_NE(Str(run, "log_tail").find("first-finished"), std::string::npos);
  // The skip is counted and reaches the server with a heartbeat.
  TestProcess third(AgentArgs("lock", token, work, true), work + ".3.log", AgentEnv());
  EXPECT_EQ(third.Wait(60000), 0);
  EXPECT_EQ(Str(Instances("lock")[0], "skipped_runs"), "1");
}

TEST_F(AgentTest, ReportsMadeWhileTheServerIsDownArriveLater) {
  repo_.Commit({{"run.sh", "#!/bin/sh\necho tick\n"}}, "v1");
  std::string token = CreateEnv("down", {{"repository", repo_.url()},
                                         {"main_run", "./run.sh"},
                                         {"interval", 1},
                                         {"force_run", true}});
  server_.KeepPort();
  auto agent = StartAgent("down", token, dir_.File("w"));
  std::string id = OnlyInstance("down");
  ASSERT_FALSE(WaitForRuns(id, 1).is_null());
  std::string down_from = FormatRfc3339(std::chrono::system_clock::now());
  ASSERT_EQ(server_.Stop(), 0);
  // The agent goes on with the set it last read; its reports queue up in the work dir.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::error_code ec;
        auto it = std::filesystem::directory_iterator(dir_.File("w/reports"), ec);
        return !ec && std::distance(it, std::filesystem::directory_iterator()) >= 2;
      },
      60000))
      << agent->Log();
  std::string down_until = FormatRfc3339(std::chrono::system_clock::now());
  ASSERT_TRUE(server_.Start());
  // Delivered once the server is back (heartbeat thread), with their original times.
  std::vector<boost::json::value> runs;
  ASSERT_TRUE(WaitFor(
      [&] {
        runs = Runs(id);
        int during = 0;
        for (const auto& r : runs) {
          auto finished = Str(r, "finished_at");
          if (finished > down_from && finished < down_until && Str(r, "status") == "ok") {
            ++during;
          }
        }
        return during >= 2;
      },
      60000))
      << agent->Log();
  EXPECT_EQ(agent->Stop(), 0) << agent->Log();
}

// --ship-log: a file's new lines reach the log store, once each and in order, through a
// rename-and-replace rotation, a truncation and a server that was down meanwhile.
TEST_F(AgentTest, AShippedFileIsFollowedThroughRotationTruncationAndAnOutage) {
  repo_.Commit({{"run.sh", "#!/bin/sh\necho ran\n"}}, "v1");
  std::string token = CreateEnv(
      "ship", {{"repository", repo_.url()}, {"main_run", "./run.sh"}, {"interval", 3600}});
  std::string file = dir_.File("app.log");
  auto append = [&](const std::string& path, int from, int to) {
    std::ofstream out(path, std::ios::app);
    for (int i = from; i < to; ++i) out << "line " << i << "\n";
  };
  append(file, 0, 3);  // there before the agent: not shipped
  server_.KeepPort();
  auto agent = StartAgent("ship", token, dir_.File("w"), false, {"--ship-log", file});
  std::string id = OnlyInstance("ship");
  ASSERT_FALSE(WaitForRuns(id, 1).is_null()) << agent->Log();
  auto shipped = [&] {
    std::vector<std::string> lines;
    auto r = Admin().Do("GET", "/v1/logs?environment=ship&since=2000-01-01T00:00:00Z&limit=5000");
    if (!r.ok() || r->status != 200) return lines;
    auto v = Json(r->body);
    for (const auto& l : v.at("items").as_array()) {
      if (Str(l, "stream") == "app.log") lines.push_back(Str(l, "line"));
    }
    return lines;
  };
  auto expect = [](int from, int to) {
    std::vector<std::string> v;
    for (int i = from; i < to; ++i) v.push_back("line " + std::to_string(i));
    return v;
  };
  append(file, 3, 10);
  ASSERT_TRUE(WaitFor([&] { return shipped() == expect(3, 10); })) << agent->Log();
  // Rotation: lines written to the old file after the rename, then a new file.
  std::filesystem::rename(file, file + ".1");
  append(file + ".1", 10, 12);
  append(file, 12, 15);
  ASSERT_TRUE(WaitFor([&] { return shipped() == expect(3, 15); })) << agent->Log();
  // Truncation (copytruncate), then more lines.
  std::filesystem::resize_file(file, 0);
  append(file, 15, 17);
  ASSERT_TRUE(WaitFor([&] { return shipped() == expect(3, 17); })) << agent->Log();
  // The server away: the lines wait in the file and arrive when it is back.
  ASSERT_EQ(server_.Stop(), 0);
  append(file, 17, 2000);
  ASSERT_TRUE(server_.Start());
  ASSERT_TRUE(WaitFor([&] { return shipped() == expect(3, 2000); }, 60000))
      << shipped().size() << agent->Log();
  // The run's own output is there too.
  auto run = Admin().Do("GET", "/v1/logs?environment=ship&q=ran");
  EXPECT_NE(run->body.find("\"stream\":\"run\""), std::string::npos) << run->body;
  EXPECT_EQ(agent->Stop(), 0) << agent->Log();
}

// One trace id finds a request's whole path: a request with a traceparent starts an execution
// in that trace; the worker's command gets it in TRACEPARENT and its output is in the log
// store under it; the server's access log names it; an agent run is a trace of its own.
TEST_F(AgentTest, ATraceIdFollowsARequestThroughAnExecutionToTheWorkersOutput) {
  ASSERT_FALSE(
      repo_
          .Commit({{"traced.sh", "#!/bin/sh\necho \"traced $TRACEPARENT\" >&2\necho '{}'\n"}}, "v1")
          .empty());
  std::string token = CreateEnv(
      "traced",
      {{"repository", repo_.url()}, {"main_run", "echo \"run $TRACEPARENT\""}, {"interval", 3600}});
  auto c = Admin();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/traced", "{}")->status, 201);
  ASSERT_EQ(
      c.Do("PUT", "/v1/workflows/traced",
           R"({"steps":[{"name":"one","type":"task","queue":"traced","command":"./traced.sh"}]})")
          ->status,
      201);
  auto agent = StartAgent("traced", token, dir_.File("w"), false, {"--worker", "traced"});
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  auto r = c.Do("POST", "/v1/workflows/traced/executions", "{}",
                {{"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(Str(Json(r->body), "trace_id"), trace);
  std::string id = Str(Json(r->body), "id");
  ASSERT_TRUE(WaitFor(
      [&] { return Str(Json(c.Do("GET", "/v1/executions/" + id)->body), "status") == "succeeded"; },
      90000))
      << agent->Log();
  EXPECT_EQ(Str(Json(c.Do("GET", "/v1/executions/" + id)->body), "trace_id"), trace);
  // The execution_created event names the trace.
  auto events = c.Do("GET", "/v1/executions/" + id + "/events");
  EXPECT_NE(events->body.find(trace), std::string::npos) << events->body;
  // The worker's line, found by the trace id alone: the same trace, a span of its own.
  std::string lines;
  ASSERT_TRUE(WaitFor([&] {
    lines = c.Do("GET", "/v1/logs?trace=" + trace)->body;
    return lines.find("traced 00-" + trace + "-") != std::string::npos;
  })) << lines
      << agent->Log();
  EXPECT_NE(lines.find("\"stream\":\"task\""), std::string::npos) << lines;
  EXPECT_EQ(lines.find("00f067aa0ba902b7"), std::string::npos) << "the worker runs as a new span";
  // The access log line of the request carries it.
  EXPECT_NE(server_.Log().find(trace), std::string::npos);
  // The agent's run is a trace of its own: its lines carry the id its command saw.
  std::string run_lines;
  ASSERT_TRUE(WaitFor([&] {
    run_lines = c.Do("GET", "/v1/logs?environment=traced&q=run%2000-")->body;
    return run_lines.find("\"trace_id\"") != std::string::npos;
  })) << run_lines;
  auto v = Json(run_lines);
  const auto& l = v.at("items").at(0);
  EXPECT_NE(Str(l, "line").find(Str(l, "trace_id")), std::string::npos) << run_lines;
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

class SignedAgentTest : public AgentTest {
 protected:
  void SetUp() override {
    std::string out;
    ASSERT_EQ(testing::RunDrover({"key", "gen-signing", key_}, &out), 0) << out;
    server_ = std::make_unique<TestServer>(std::vector<std::string>{"--signing-key", key_});
    ASSERT_TRUE(server_->Start());
  }
  std::string key_ = dir_.File("cc-signing");
  std::unique_ptr<TestServer> server_;
};

TEST_F(SignedAgentTest, VerifiedSetsRunAndTamperedReplayedOrUnsignedOnesRunNothing) {
  repo_.Commit({{"run.sh", "#!/bin/sh\necho \"signed run $CC_A_BUILD_TAG\" >> \"$OUT\"\n"}}, "v1");
  std::string out = dir_.File("out.txt");
  boost::json::object doc{{"spec",
                           {{"provider", "static"},
                            {"agent",
                             {{"repository", repo_.url()},
                              {"main_run", "OUT=" + out + " ./run.sh"},
                              {"force_run", true},
                              {"vars", {{"build-tag", "one"}}}}}}}};
  auto admin = server_->NewClient();
  auto created = admin.Do("PUT", "/v1/environments/sig", boost::json::serialize(doc));
  ASSERT_EQ(created->status, 201);
  std::string token = Str(Json(created->body), "join_token");
  std::string work = dir_.File("w");
  auto once = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"agent", "--server",      server_->addr(), "--join-token",
                                     token,   "--environment", "sig",           "--work-dir",
                                     work,    "--once",        "--verify-key",  key_ + ".pub"};
    args.insert(args.end(), extra.begin(), extra.end());
    TestProcess p(args, work + ".log", AgentEnv());
    return p.Wait(120000);
  };
  ASSERT_EQ(once({}), 0);
  // The set as the server signs it, for the man in the middle below.
  std::string agent_key;
  {
    std::ifstream f(work + "/state.json");
    std::string state((std::istreambuf_iterator<char>(f)), {});
    agent_key = Str(Json(state), "agent_key");
  }
  auto agent = server_->NewClient(agent_key);
  auto old_set = agent.Do("GET", "/v1/cc/agent");
  ASSERT_EQ(old_set->status, 200);
  ASSERT_FALSE(old_set->Header("X-Drover-Signature").empty());

  // Tampered: the signed headers with another body.
  testing::FixedHttp mitm;
  std::string tampered = old_set->body;
  tampered.replace(tampered.find("\"one\""), 5, "\"two\"");
  mitm.Set({{"Content-Type", "application/json"},
            {"X-Drover-Index", old_set->Header("X-Drover-Index")},
            {"X-Drover-Signature", old_set->Header("X-Drover-Signature")}},
           tampered);
  EXPECT_EQ(once({"--cc", mitm.url("/v1/cc/agent")}), 1);
  // Unsigned.
  mitm.Set({{"Content-Type", "application/json"}}, old_set->body);
  EXPECT_EQ(once({"--cc", mitm.url("/v1/cc/agent")}), 1);

  // A newer set is accepted; then the older (validly signed) one is a replay.
  auto put =
      admin.Do("PUT", "/v1/variables/cc-a-build-tag", R"({"value":"three","environment":"sig"})");
  ASSERT_TRUE(put->ok());
  ASSERT_EQ(once({}), 0);
  mitm.Set({{"Content-Type", "application/json"},
            {"X-Drover-Index", old_set->Header("X-Drover-Index")},
            {"X-Drover-Signature", old_set->Header("X-Drover-Signature")}},
           old_set->body);
  EXPECT_EQ(once({"--cc", mitm.url("/v1/cc/agent")}), 1);

  std::ifstream f(out);
  std::string ran((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(ran, "signed run one\nsigned run three\n") << "refused sets must run nothing";
  // Each refusal is a failed run with its reason.
  std::vector<std::string> reasons;
  auto runs =
      Json(admin
               .Do("GET", "/v1/instances/" +
                              Str(Json(admin.Do("GET", "/v1/environments/sig/instances")->body)
                                      .at("items")
                                      .as_array()[0],
                                  "id") +
                              "/runs?limit=10")
               ->body);
  for (const auto& r : runs.at("items").as_array()) reasons.push_back(Str(r, "reason"));
  ASSERT_EQ(reasons.size(), 5u);
  EXPECT_NE(reasons[0].find("replayed older set"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[2].find("not signed"), std::string::npos) << reasons[2];
  EXPECT_NE(reasons[3].find("does not match"), std::string::npos) << reasons[3];
}

// The agent-side watcher with the bundled AWS script and a fake `aws` on PATH that records calls.
TEST_F(AgentTest, WatcherAppliesItsResolvedCapacityOnceAndFollowsTheStop) {
  repo_.Commit({{"run.sh", "#!/bin/sh\ntrue\n"}}, "v1");
  std::string token = CreateEnv("watch", {{"repository", repo_.url()}, {"main_run", "./run.sh"}});
  std::filesystem::create_directories(dir_.File("bin"));
  std::string calls = dir_.File("calls.log");
  { std::ofstream(dir_.File("bin/aws")) << "#!/bin/sh\necho \"aws $*\" >> \"$CALLS\"\n"; }
  std::filesystem::permissions(dir_.File("bin/aws"), std::filesystem::perms::owner_all);
  const char* path = std::getenv("PATH");
  auto env = AgentEnv();
  env.push_back("PATH=" + dir_.File("bin") + ":" + (path ? path : "/usr/bin:/bin"));
  env.push_back("CALLS=" + calls);
  env.push_back("ASG_NAME=sim-asg");
  std::string work = dir_.File("w");
  std::string script =
      std::string(DROVER_SOURCE_DIR) + "/contrib/providers/aws-asg/set-capacity.sh";
  auto run_once = [&] {
    TestProcess p(AgentArgs("watch", token, work, true,
                            {"--watcher", "--watcher-command", script, "--cloud", "aws", "--region",
                             "eu-central-1"}),
                  work + ".log", env);
    return p.Wait(120000);
  };
  auto recorded = [&] {
    std::ifstream in(calls);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  };
  auto call = [](int n) {
    return "aws autoscaling set-desired-capacity --auto-scaling-group-name sim-asg "
           "--desired-capacity " +
           std::to_string(n) + " --region eu-central-1";
  };
  PutVar("cc-a-desired-capacity", R"({"all":3,"aws":{"eu-central-1":5}})", "watch");
  ASSERT_EQ(run_once(), 0);
  EXPECT_EQ(recorded(), std::vector<std::string>{call(5)});
  ASSERT_EQ(run_once(), 0);
  EXPECT_EQ(recorded().size(), 1u) << "a no-op change is not applied";
  PutVar("cc-a-desired-capacity", R"({"all":3,"aws":{"all":2}})", "watch");
  ASSERT_EQ(run_once(), 0);
  EXPECT_EQ(recorded(), (std::vector<std::string>{call(5), call(2)}));
  // Within 60 s of a scheduled stop nothing changes; once the stop has passed, 0.
  auto now = SystemClock::Get().Now();
  PutVar("cc-a-desired-capacity", "7", "watch");
  PutVar("cc-a-stop", FormatRfc3339(now + std::chrono::seconds(40)), "watch");
  ASSERT_EQ(run_once(), 0);
  EXPECT_EQ(recorded().size(), 2u);
  PutVar("cc-a-stop", FormatRfc3339(now - std::chrono::seconds(1)), "watch");
  ASSERT_EQ(run_once(), 0);
  EXPECT_EQ(recorded(), (std::vector<std::string>{call(5), call(2), call(0)}));
}

// A watcher command that fails is logged and retried at the next run; the run itself is not
// failed by it.
TEST_F(AgentTest, AFailingWatcherCommandIsRetriedAtTheNextRun) {
  repo_.Commit({{"run.sh", "#!/bin/sh\ntrue\n"}}, "v1");
  std::string token = CreateEnv("watchf", {{"repository", repo_.url()}, {"main_run", "./run.sh"}});
  PutVar("cc-a-desired-capacity", "4", "watchf");
  std::string work = dir_.File("w"), seen = dir_.File("seen");
  std::string fail = dir_.File("fail");
  std::ofstream(fail) << "x";
  // Fails while the file `fail` exists; records its input otherwise.
  std::string command =
      "test ! -e " + fail + " || { echo 'no quota' >&2; exit 3; }; cat >> " + seen;
  auto run_once = [&] {
    TestProcess p(
        AgentArgs("watchf", token, work, true, {"--watcher", "--watcher-command", command}),
        work + ".log", AgentEnv());
    return p.Wait(120000);
  };
  ASSERT_EQ(run_once(), 0);
  EXPECT_FALSE(FileExists(seen));
  std::ifstream log(work + ".log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("no quota"), std::string::npos) << text;
  std::filesystem::remove(fail);
  ASSERT_EQ(run_once(), 0);
  std::ifstream in(seen);
  std::string input((std::istreambuf_iterator<char>(in)), {});
  auto v = Json(input);
  EXPECT_EQ(Str(v, "desired"), "4");
  EXPECT_EQ(Str(v, "environment"), "watchf");
  EXPECT_FALSE(Str(v, "instance_id").empty());
}

TEST_F(AgentTest, AnAgentKeyActsForItsOwnInstanceAndEnvironmentOnly) {
  std::string t1 = CreateEnv("one", {{"ref", "main"}});
  std::string t2 = CreateEnv("two", {{"ref", "other"}});
  auto join = [&](const std::string& env, const std::string& token) {
    client::Client c({server_.addr(), token});
    auto r = c.Do("POST", "/v1/environments/" + env + "/join", R"({"hostname":"h"})");
    EXPECT_EQ(r->status, 201) << r->body;
    return Json(r->body);
  };
  auto j1 = join("one", t1);
  auto j2 = join("two", t2);
  client::Client bad({server_.addr(), t1});
  EXPECT_EQ(bad.Do("POST", "/v1/environments/two/join", "")->status, 401)
      << "a join token is good for its own environment only";
  client::Client a1({server_.addr(), Str(j1, "agent_key")});
  auto own = a1.Do("GET", "/v1/cc/agent");
  EXPECT_EQ(own->status, 200);
  EXPECT_EQ(own->body, R"({"cc-a-ref":"main"})");
  EXPECT_EQ(a1.Do("GET", "/v1/cc/agent?environment=two")->status, 403);
  EXPECT_EQ(a1.Do("POST", "/v1/instances/" + Str(j2, "instance_id") + "/heartbeat", "{}")->status,
            403);
  EXPECT_EQ(a1.Do("POST", "/v1/instances/" + Str(j1, "instance_id") + "/heartbeat", "{}")->status,
            200);
  EXPECT_EQ(a1.Do("GET", "/v1/variables")->status, 403);
  EXPECT_EQ(a1.Do("PUT", "/v1/environments/one", R"({"provider":"static"})")->status, 403);
  // Deleting the environment revokes its agents' keys at once.
  auto admin = Admin();
  EXPECT_EQ(admin.Do("DELETE", "/v1/environments/one")->status, 204);
  EXPECT_EQ(a1.Do("GET", "/v1/cc/agent")->status, 401);
}

TEST_F(AgentTest, SigtermDuringARunLetsItFinishReportsAndExitsZero) {
  std::string started = dir_.File("started");
  repo_.Commit({{"run.sh", "#!/bin/sh\ntouch \"$1\"\nsleep 1\necho finished-cleanly\n"}}, "v1");
  std::string token =
      CreateEnv("term", {{"repository", repo_.url()}, {"main_run", "./run.sh " + started}});
  auto agent = StartAgent("term", token, dir_.File("w"));
  ASSERT_TRUE(WaitFor([&] { return FileExists(started); }, 60000)) << agent->Log();
  EXPECT_EQ(agent->Stop(SIGTERM), 0) << agent->Log();
  auto run = WaitForRuns(OnlyInstance("term"), 1);
  EXPECT_EQ(Str(run, "status"), "ok");
  EXPECT_NE(Str(run, "log_tail").find("finished-cleanly"), std::string::npos);
}

TEST_F(AgentTest, SigtermKillsARunThatOutlastsTheStopGraceReportsItAndExitsZero) {
  std::string started = dir_.File("started"), pid_file = dir_.File("pid");
  repo_.Commit({{"run.sh", "#!/bin/sh\necho $$ > \"$2\"\ntouch \"$1\"\nsleep 300\n"}}, "v1");
  std::string token = CreateEnv(
      "grace", {{"repository", repo_.url()}, {"main_run", "./run.sh " + started + " " + pid_file}});
  auto agent = StartAgent("grace", token, dir_.File("w"), false, {"--stop-grace", "1s"});
  ASSERT_TRUE(WaitFor([&] { return FileExists(started); }, 60000)) << agent->Log();
  EXPECT_EQ(agent->Stop(SIGTERM), 0) << agent->Log();
  std::ifstream f(pid_file);
  pid_t child = 0;
  ASSERT_TRUE(f >> child);
  EXPECT_TRUE(WaitFor([&] { return ::kill(child, 0) != 0; }, 10000)) << "the run's process is gone";
  auto run = WaitForRuns(OnlyInstance("grace"), 1);
  EXPECT_EQ(Str(run, "status"), "failed");
  EXPECT_NE(Str(run, "reason").find("the agent is stopping"), std::string::npos)
      << Str(run, "reason");
}

TEST_F(AgentTest, DefaultsFileWorksWithoutAServerAndAllowPinsKeys) {
  std::string c1 = repo_.Commit({{"run.sh", "#!/bin/sh\necho \"$CC_A_MODE\" > \"$1\"\n"}}, "v1");
  std::string out = dir_.File("mode");
  std::string defaults = dir_.File("defaults.yaml");
  std::ofstream(defaults) << "cc-a-repository: " << repo_.url() << "\ncc-a-main-run: ./run.sh "
                          << out << "\ncc-a-mode: from-defaults\n";
  TestProcess alone({"agent", "--once", "--defaults", defaults, "--work-dir", dir_.File("w1")},
                    dir_.File("w1.log"), AgentEnv());
  ASSERT_EQ(alone.Wait(120000), 0) << alone.Log();
  std::ifstream f(out);
  std::string mode;
  f >> mode;
  EXPECT_EQ(mode, "from-defaults");
  // A header-only endpoint (no JSON body) sets cc-a-mode; --allow lets only cc-a-mode through,
  // so its attempt to change the repository is ignored.
  testing::FixedHttp cdn;
  cdn.Set({{"cc-a-mode", "from-cdn"}, {"cc-a-repository", "file:///nowhere.git"}}, "");
  // The first endpoint is down: the second answers (failover).
  TestProcess pinned(
      {"agent", "--once", "--defaults", defaults, "--cc", "http://127.0.0.1:1/cc", "--cc",
       cdn.url("/cc"), "--allow", "cc-a-mode", "--work-dir", dir_.File("w2")},
      dir_.File("w2.log"), AgentEnv());
  ASSERT_EQ(pinned.Wait(120000), 0) << pinned.Log();
  std::ifstream g(out);
  g >> mode;
  EXPECT_EQ(mode, "from-cdn");
  EXPECT_GE(cdn.requests(), 1);
}

TEST_F(AgentTest, GitFailuresFailTheRunWithTheirReason) {
  std::string token =
      CreateEnv("nogit", {{"repository", "file:///does/not/exist.git"}, {"main_run", "true"}});
  TestProcess p(AgentArgs("nogit", token, dir_.File("w"), true), dir_.File("w.log"), AgentEnv());
  EXPECT_EQ(p.Wait(120000), 1) << p.Log();
  auto run = WaitForRuns(OnlyInstance("nogit"), 1);
  EXPECT_EQ(Str(run, "status"), "failed");
  EXPECT_NE(Str(run, "reason").find("git clone failed"), std::string::npos) << Str(run, "reason");
}

TEST_F(AgentTest, OldRepositoryDirsAndOldLogsAreRemoved) {
  repo_.Commit({{"run.sh", "#!/bin/sh\necho one\n"}}, "v1");
  GitRepo other;
  other.Commit({{"run.sh", "#!/bin/sh\necho two\n"}}, "v1");
  std::string token = CreateEnv(
      "repos", {{"repository", repo_.url()}, {"main_run", "./run.sh"}, {"force_run", true}});
  std::string work = dir_.File("w");
  auto once = [&] {
    TestProcess p(AgentArgs("repos", token, work, true, {"--keep-logs", "2"}), work + ".log",
                  AgentEnv());
    return p.Wait(120000);
  };
  auto count = [](const std::string& dir) {
    std::error_code ec;
    auto it = std::filesystem::directory_iterator(dir, ec);
    return ec ? -1 : static_cast<int>(std::distance(it, std::filesystem::directory_iterator()));
  };
  ASSERT_EQ(once(), 0);
  ASSERT_EQ(count(work + "/repos"), 1);
  std::string first_dir = std::filesystem::directory_iterator(work + "/repos")->path().string();
  PutVar("cc-a-repository", other.url(), "repos");
  ASSERT_EQ(once(), 0);
  ASSERT_EQ(once(), 0);
  EXPECT_EQ(count(work + "/repos"), 1) << "one checkout per repository in use";
  EXPECT_FALSE(FileExists(first_dir));
  EXPECT_EQ(count(work + "/logs"), 2) << "--keep-logs 2";
  auto run = WaitForRuns(OnlyInstance("repos"), 3);
  EXPECT_NE(Str(run, "log_tail").find("two"), std::string::npos) << Str(run, "log_tail");
}

TEST_F(SignedAgentTest, AnExpiredSignedSetIsRefused) {
  // A server whose signatures hold one second.
  TestServer quick({"--signing-key", key_, "--signature-ttl", "1s"});
  ASSERT_TRUE(quick.Start());
  repo_.Commit({{"run.sh", "#!/bin/sh\necho ran\n"}}, "v1");
  auto admin = quick.NewClient();
  auto created = admin.Do("PUT", "/v1/environments/exp",
                          R"({"provider":"static","agent":{"repository":")" + repo_.url() +
                              R"(","main_run":"./run.sh"}})");
  ASSERT_EQ(created->status, 201);
  std::string token = Str(Json(created->body), "join_token");
  client::Client joiner({quick.addr(), token});
  auto j = Json(joiner.Do("POST", "/v1/environments/exp/join", "")->body);
  client::Client agent({quick.addr(), Str(j, "agent_key")});
  auto set = agent.Do("GET", "/v1/cc/agent");
  auto sig = set->Header("X-Drover-Signature");
  auto expires = std::stoll(sig.substr(sig.find("expires=") + 8));
  // Wait until the signature has expired, then serve the set as it was.
  ASSERT_TRUE(WaitFor([&] { return std::time(nullptr) > expires + 1; }, 10000));
  testing::FixedHttp stale;
  stale.Set({{"Content-Type", "application/json"}, {"X-Drover-Signature", sig}}, set->body);
  std::string work = dir_.File("w");
  TestProcess p(
      {"agent", "--once", "--server", quick.addr(), "--token", Str(j, "agent_key"), "--environment",
       "exp", "--cc", stale.url("/"), "--verify-key", key_ + ".pub", "--work-dir", work},
      work + ".log", AgentEnv());
  EXPECT_EQ(p.Wait(120000), 1) << p.Log();
  EXPECT_NE(p.Log().find("expired"), std::string::npos) << p.Log();
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// An agent stopped with SIGTERM leaves: its instance is terminated (not unhealthy), its agent key
// no longer works, default listings leave it out (?all=true shows it), and a static environment
// whose agents left cleanly is not degraded. A stopped instance can then be forgotten.
TEST_F(AgentTest, AnAgentStoppedWithSigtermLeavesAndIsForgotten) {
  repo_.Commit({{"run.sh", "#!/bin/sh\necho hi\n"}}, "v1");
  std::string token = CreateEnv("leave", {{"repository", repo_.url()}, {"main_run", "./run.sh"}});
  std::string work = dir_.File("leaver");
  auto agent = StartAgent("leave", token, work);
  std::string id = OnlyInstance("leave");
  ASSERT_FALSE(id.empty()) << agent->Log();
  ASSERT_FALSE(WaitForRuns(id, 1).is_null()) << agent->Log();
  auto state = Json(ReadFile(work + "/state.json").value_or("{}"));
  std::string key = Str(state, "agent_key");
  ASSERT_FALSE(key.empty());
  auto as_agent = server_.NewClient(key);
  EXPECT_EQ(as_agent.Do("GET", "/v1/cc/agent")->status, 200);

  EXPECT_EQ(agent->Stop(SIGTERM), 0) << agent->Log();
  auto c = Admin();
  auto all = Json(c.Do("GET", "/v1/environments/leave/instances?all=true")->body).at("items");
  ASSERT_EQ(all.as_array().size(), 1u);
  EXPECT_EQ(Str(all.at(0), "state"), "terminated");
  EXPECT_NE(Str(all.at(0), "state_reason").find("left"), std::string::npos) << all;
  EXPECT_TRUE(Instances("leave").empty()) << "terminated instances leave the default listing";
  EXPECT_EQ(as_agent.Do("GET", "/v1/cc/agent")->status, 401) << "its key is revoked";
  auto env = Json(c.Do("GET", "/v1/environments/leave")->body);
  EXPECT_NE(Str(env.at("status"), "phase"), "degraded") << env;
  EXPECT_NE(c.Do("GET", "/v1/environments/leave/events")->body.find("\"left\""), std::string::npos);

  // Forgotten: gone from every listing, runs and all.
  EXPECT_EQ(c.Do("DELETE", "/v1/instances/" + id)->status, 204);
  EXPECT_TRUE(Json(c.Do("GET", "/v1/environments/leave/instances?all=true")->body)
                  .at("items")
                  .as_array()
                  .empty());
  EXPECT_EQ(c.Do("GET", "/v1/instances/" + id)->status, 404);
  EXPECT_EQ(c.Do("DELETE", "/v1/instances/" + id)->status, 404);
}

// Agents run by cron (--once) are judged by the age of their last run against their interval,
// not by heartbeats: silent between runs is healthy; runs that stop coming is not.
TEST_F(AgentTest, CronAgentsAreJudgedByTheirRunsNotHeartbeats) {
  repo_.Commit({{"run.sh", "#!/bin/sh\necho tick\n"}}, "v1");
  boost::json::object doc{{"provider", "static"},
                          {"capacity", 1},
                          {"agent",
                           {{"repository", repo_.url()},
                            {"main_run", "./run.sh"},
                            {"interval", 3},
                            {"force_run", true}}},
                          {"health", {{"heartbeat_interval", "1s"}, {"unhealthy_after", 2}}}};
  auto c = Admin();
  auto put = c.Do("PUT", "/v1/environments/cron", boost::json::serialize(doc));
  ASSERT_EQ(put->status, 201) << put->body;
  std::string token = Str(Json(put->body), "join_token");
  std::string work = dir_.File("cron");
  auto run_once = [&] {
    TestProcess p(AgentArgs("cron", token, work, true), work + ".log", AgentEnv());
    return p.Wait(120000);
  };
  ASSERT_EQ(run_once(), 0);
  std::string id = OnlyInstance("cron");
  auto inst = Json(c.Do("GET", "/v1/instances/" + id)->body);
  EXPECT_EQ(Str(inst, "mode"), "once");
  EXPECT_EQ(Str(inst, "interval"), "3s");
  // Heartbeats stopped with the process: by heartbeats it would be unhealthy after ~3 s. Runs
  // every 3 s keep it running.
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    ASSERT_EQ(run_once(), 0);
    EXPECT_EQ(Str(Json(c.Do("GET", "/v1/instances/" + id)->body), "state"), "running");
  }
  // Cron stops running it: after two missed runs (and one interval of slack) it is unhealthy.
  EXPECT_TRUE(WaitFor(
      [&] { return Str(Json(c.Do("GET", "/v1/instances/" + id)->body), "state") == "unhealthy"; },
      60000));
  EXPECT_NE(c.Do("GET", "/v1/environments/cron/events")->body.find("no run for"),
            std::string::npos);
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// A join the server refuses (a wrong environment name or token) is one clear error and exit 2,
// not a cascade of retries; the server and token may come from the environment, as for every
// other subcommand (DROVER_ADDR, DROVER_JOIN_TOKEN).
TEST_F(AgentTest, AWrongEnvironmentIsOneClearError) {
  std::string token = CreateEnv("right", {{"repository", repo_.url()}});
  TestProcess p(
      {"agent", "--environment", "wrong", "--work-dir", dir_.File("w"), "--once"},
      dir_.File("w.log"),
      {"DROVER_ADDR=" + server_.addr(), "DROVER_JOIN_TOKEN=" + token, "HOME=" + dir_.path()});
  EXPECT_EQ(p.Wait(60000), 2) << p.Log();
  std::string log = p.Log();
  EXPECT_NE(log.find("cannot join environment 'wrong'"), std::string::npos) << log;
  size_t lines = 0;
  for (size_t at = log.find("cannot join"); at != std::string::npos;
       at = log.find("cannot join", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << log;
  EXPECT_TRUE(Instances("right").empty()) << "nothing joined";
}

// `drover agent --worker`: two agents take the task steps of a three-step workflow from a queue
// and run them in their checkout -- the input on stdin and in DROVER_INPUT, the output from the
// last JSON line of stdout; a failing command fails its attempt with its exit code and stderr.
TEST_F(AgentTest, TwoAgentWorkersRunAThreeStepWorkflow) {
  std::string step =
      "#!/bin/sh\n"
      "input=$(cat)\n"
      "echo \"working on $DROVER_STEP\"\n"
      "if [ \"$DROVER_STEP\" = explode ]; then echo 'it blew up' >&2; exit 3; fi\n"
      "echo \"{\\\"got\\\": $input, \\\"env\\\": $DROVER_INPUT, \\\"step\\\": "
      "\\\"$DROVER_STEP\\\", "
      "\\\"attempt\\\": $DROVER_ATTEMPT}\"\n";
  ASSERT_FALSE(repo_.Commit({{"step.sh", step}}, "v1").empty());
  std::string token = CreateEnv(
      "workers",
      {{"repository", repo_.url()}, {"ref", "main"}, {"main_run", "true"}, {"interval", 3600}});
  auto c = Admin();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/tasks", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/three", R"({"steps":[
      {"name":"prepare","type":"task","queue":"tasks","command":"./step.sh","input":{"n":"{{ input.n }}"}},
      {"name":"crunch","type":"task","queue":"tasks","command":"./step.sh",
       "input":"{{ steps.prepare.output.got.n }}"},
      {"name":"report","type":"task","queue":"tasks","command":"./step.sh",
       "input":{"crunched":"{{ steps.crunch.output.got }}"}}]})")
                ->status,
            201);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/boom", R"({"steps":[
      {"name":"explode","type":"task","queue":"tasks","command":"./step.sh",
       "retry":{"max_attempts":2,"backoff":"100ms"}}]})")
                ->status,
            201);
  auto a1 = StartAgent("workers", token, dir_.File("w1"), false, {"--worker", "tasks"});
  auto a2 = StartAgent("workers", token, dir_.File("w2"), false,
                       {"--worker", "tasks", "--concurrency", "2"});
  std::vector<std::string> ids;
  for (int n = 0; n < 4; ++n) {
    auto r = c.Do("POST", "/v1/workflows/three/executions",
                  "{\"input\":{\"n\":" + std::to_string(n) + "}}");
    ASSERT_EQ(r->status, 201) << r->body;
    ids.push_back(Str(Json(r->body), "id"));
  }
  auto r = c.Do("POST", "/v1/workflows/boom/executions", "{}");
  ASSERT_EQ(r->status, 201);
  std::string boom = Str(Json(r->body), "id");
  auto get = [&](const std::string& id) {
    auto e = c.Do("GET", "/v1/executions/" + id);
    return e.ok() && e->status == 200 ? Json(e->body) : boost::json::value();
  };
  for (size_t n = 0; n < ids.size(); ++n) {
    ASSERT_TRUE(WaitFor([&] { return Str(get(ids[n]), "status") == "succeeded"; }, 90000))
        << boost::json::serialize(get(ids[n])) << a1->Log() << a2->Log();
    auto e = get(ids[n]);
    const auto& out = e.at("output");
    EXPECT_EQ(out.at("step").as_string(), "report");
    EXPECT_EQ(out.at("got").at("crunched").as_int64(), static_cast<int64_t>(n));
    EXPECT_EQ(out.at("env"), out.at("got"));  // DROVER_INPUT holds the same input
    EXPECT_EQ(out.at("attempt").as_int64(), 1);
  }
  ASSERT_TRUE(WaitFor([&] { return Str(get(boom), "status") == "failed"; }, 90000));
  std::string error = Str(get(boom), "error");
  EXPECT_NE(error.find("exit 3"), std::string::npos) << error;
  EXPECT_NE(error.find("it blew up"), std::string::npos) << error;
  EXPECT_EQ(get(boom).at("steps").at(0).at("attempt").as_int64(), 2);
}

// A worker agent killed (-9) in the middle of a task: the task comes back after its visibility
// timeout, another worker runs it as attempt 2, and the execution succeeds with that recorded.
TEST_F(AgentTest, AWorkerKilledMidTaskIsRetriedByAnother) {
  ASSERT_FALSE(repo_
                   .Commit({{"task.sh",
                             "#!/bin/sh\n"
                             "if [ \"$DROVER_ATTEMPT\" = 1 ]; then\n"
                             "  echo $$ > \"$HOME/task.pid\"; exec sleep 60\n"
                             "fi\n"
                             "echo \"{\\\"attempt\\\": $DROVER_ATTEMPT}\"\n"}},
                           "v1")
                   .empty());
  std::string token = CreateEnv(
      "crash",
      {{"repository", repo_.url()}, {"ref", "main"}, {"main_run", "true"}, {"interval", 3600}});
  auto c = Admin();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/workflows/slow", R"({"steps":[
      {"name":"work","type":"task","queue":"jobs","command":"./task.sh",
       "retry":{"max_attempts":3}}]})")
                ->status,
            201);
  auto r = c.Do("POST", "/v1/workflows/slow/executions", "{}");
  ASSERT_EQ(r->status, 201);
  std::string id = Str(Json(r->body), "id");
  auto first = StartAgent("crash", token, dir_.File("k1"), false,
                          {"--worker", "jobs", "--task-visibility", "2s"});
  // Taken (in flight) by the first worker.
  ASSERT_TRUE(WaitFor([&] {
    auto q = c.Do("GET", "/v1/queues/jobs");
    return q.ok() && q->status == 200 && Json(q->body).at("stats").at("in_flight").as_int64() == 1;
  }));
  first->Kill();
  auto second = StartAgent("crash", token, dir_.File("k2"), false,
                           {"--worker", "jobs", "--task-visibility", "2s"});
  ASSERT_TRUE(WaitFor(
      [&] {
        auto e = c.Do("GET", "/v1/executions/" + id);
        return e.ok() && Str(Json(e->body), "status") == "succeeded";
      },
      60000))
      << second->Log();
  auto e = Json(c.Do("GET", "/v1/executions/" + id)->body);
  EXPECT_EQ(e.at("steps").at(0).at("attempt").as_int64(), 2);
  EXPECT_EQ(e.at("output").at("attempt").as_int64(), 2);
  // The first attempt's command outlived its killed agent (as it would on a real machine).
  std::ifstream pidfile(dir_.File("task.pid"));
  pid_t pid = 0;
  if (pidfile >> pid && pid > 0) ::kill(pid, SIGKILL);
}

}  // namespace
}  // namespace drover
