// The fleet controller with the local provider: real servers start real `drover agent`
// processes, which join, heartbeat and run a real Git repository.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>

#include "testing/git_repo.h"
#include "testing/raw_http.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::GitRepo;
using testing::TestServer;
using testing::WaitFor;

std::string Str(const boost::json::value& v, std::string_view k) {
  const auto* f = v.as_object().if_contains(k);
  if (!f || f->is_null()) return "";
  return f->is_string() ? std::string(f->as_string()) : boost::json::serialize(*f);
}

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.Commit({{"run.sh",
                   "#!/bin/sh\necho \"on port $PORT\"\n"
                   "echo \"join token: ${DROVER_JOIN_TOKEN:-unset}\"\n"}},
                 "v1");
    ASSERT_TRUE(server_->Start());
  }
  void TearDown() override {
    // Whatever the test left running: the server first (it stops its agents), then any agent.
    server_->Stop();
    for (int pid : seen_pids_) ::kill(-pid, SIGKILL);
  }

  // A local environment: `capacity` agents with 1 s heartbeats.
  void CreateEnv(const std::string& name, int capacity, const std::string& health_extra = "",
                 const std::string& spec_extra = "") {
    std::string body =
        R"({"provider":"local","capacity":)" + std::to_string(capacity) +
        R"(,"agent":{"repository":")" + repo_.url() +
        R"(","main_run":"./run.sh","interval":3600},"health":{"heartbeat_interval":"1s")" +
        health_extra + "}" + spec_extra + "}";
    auto c = server_->NewClient();
    auto r = c.Do("PUT", "/v1/environments/" + name, body);
    ASSERT_EQ(r->status, 201) << r->body;
  }

  boost::json::array Instances(const std::string& env) {
    auto c = server_->NewClient();
    auto r = c.Do("GET", "/v1/environments/" + env + "/instances");
    if (!r.ok() || r->status != 200) return {};
    auto v = boost::json::parse(r->body);
    auto items = v.at("items").as_array();
    for (const auto& i : items) {
      if (int pid = Pid(i); pid > 0) seen_pids_.insert(pid);
    }
    return items;
  }

  // Instances of `env` in `state`.
  std::vector<boost::json::value> InState(const std::string& env, const std::string& state) {
    std::vector<boost::json::value> out;
    for (const auto& i : Instances(env)) {
      if (Str(i, "state") == state) out.push_back(i);
    }
    return out;
  }

  bool WaitRunning(const std::string& env, size_t n, int ms = 60000) {
    return WaitFor([&] { return InState(env, "running").size() == n; }, ms);
  }

  static int Pid(const boost::json::value& inst) {
    std::string id = Str(inst, "provider_id");
    return id.starts_with("local:") ? std::atoi(id.c_str() + 6) : 0;
  }

  std::string Events(const std::string& env) {
    auto c = server_->NewClient();
    return c.Do("GET", "/v1/environments/" + env + "/events?limit=1000")->body;
  }

  void Scale(const std::string& env, int n) {
    auto c = server_->NewClient();
    auto r = c.Do("POST", "/v1/environments/" + env + "/scale",
                  R"({"capacity":)" + std::to_string(n) + "}");
    ASSERT_EQ(r->status, 200) << r->body;
  }

  GitRepo repo_;
  std::unique_ptr<TestServer> server_ =
      std::make_unique<TestServer>(std::vector<std::string>{"--local-instances", "stop"});
  std::set<int> seen_pids_;
};

TEST_F(FleetTest, CapacityStartsAgentsAKilledOneIsReplacedAndScaleGrowsAndShrinks) {
  CreateEnv("web", 3);
  ASSERT_TRUE(WaitRunning("web", 3)) << server_->Log();
  // Each agent ran the repository with its own PORT.
  std::set<std::string> addresses;
  for (const auto& i : InState("web", "running")) addresses.insert(Str(i, "address"));
  EXPECT_EQ(addresses.size(), 3u);
  // The join token is on no agent's command line (ps shows those to every user of the host)
  // and not in what its runs inherit.
  auto admin = server_->NewClient();
  auto spec = boost::json::parse(admin.Do("GET", "/v1/environments/web")->body);
  std::string token = Str(spec.at("status"), "join_token");
  ASSERT_FALSE(token.empty());
  for (const auto& i : InState("web", "running")) {
    std::ifstream cmdline("/proc/" + std::to_string(Pid(i)) + "/cmdline");
    std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    EXPECT_FALSE(args.empty());
    EXPECT_EQ(args.find(token), std::string::npos)
        << "token on the command line of " << Str(i, "id");
  }
  std::string first = Str(InState("web", "running")[0], "id");
  std::string log;
  EXPECT_TRUE(WaitFor([&] {
    auto r = admin.Do("GET", "/v1/instances/" + first + "/runs/1/log");
    log = r.ok() ? r->body : "";
    return r.ok() && r->status == 200;
  }));
  EXPECT_NE(log.find("join token: unset"), std::string::npos) << log;

  auto victim = InState("web", "running")[0];
  int pid = Pid(victim);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto running = InState("web", "running");
        bool victim_gone = true;
        for (const auto& i : running) victim_gone &= Str(i, "id") != Str(victim, "id");
        return running.size() == 3 && victim_gone;
      },
      60000))
      << server_->Log();
  auto events = Events("web");
  EXPECT_NE(events.find("its agent process is gone"), std::string::npos) << events;
  EXPECT_NE(events.find("replacement (restart 1)"), std::string::npos) << events;

  Scale("web", 5);
  ASSERT_TRUE(WaitRunning("web", 5)) << server_->Log();
  Scale("web", 1);
  ASSERT_TRUE(WaitRunning("web", 1)) << server_->Log();
  // The terminated ones' agents are gone, the survivor's is not.
  for (const auto& i : InState("web", "terminated")) {
    int p = Pid(i);
    EXPECT_TRUE(WaitFor([&] { return ::kill(p, 0) != 0; }, 10000)) << Str(i, "id");
  }
  EXPECT_EQ(::kill(Pid(InState("web", "running")[0]), 0), 0);
  auto env = boost::json::parse(server_->NewClient().Do("GET", "/v1/environments/web")->body);
  EXPECT_EQ(Str(env.at("status"), "phase"), "ready");
  EXPECT_EQ(Str(env, "scale_capacity"), "1");
}

// A local instance's run output reaches the log store and a follower of it: the line the run
// prints arrives on an open event stream, and `drover logs` prints it.
TEST_F(FleetTest, ALocalInstancesOutputIsInTheLogStoreAndFollowed) {
  int fd = testing::ConnectTo(testing::PortOf(*server_));
  ASSERT_GE(fd, 0);
  auto close_fd = std::unique_ptr<int, void (*)(int*)>(&fd, [](int* f) { ::close(*f); });
  CreateEnv("logs", 1);
  ASSERT_TRUE(testing::WriteAll(fd,
                                "GET /v1/logs?environment=logs&follow=true HTTP/1.1\r\n"
                                "Host: x\r\nAuthorization: Bearer " +
                                    server_->admin_key() + "\r\n\r\n"));
  std::string got;
  ASSERT_TRUE(testing::ReadUntil(fd, &got, "on port ")) << got << server_->Log();
  EXPECT_NE(got.find("\"stream\":\"run\""), std::string::npos) << got;
  EXPECT_NE(got.find("\"environment\":\"logs\""), std::string::npos) << got;
  // The instance's own output (its agent's) is there too, as agent.log.
  auto c = server_->NewClient();
  ASSERT_TRUE(WaitFor([&] {
    auto all = c.Do("GET", "/v1/logs?environment=logs&limit=1000");
    return all.ok() && all->body.find("\"stream\":\"agent.log\"") != std::string::npos;
  })) << c.Do("GET", "/v1/logs?environment=logs&limit=1000")->body;
  // The CLI shows the run's line.
  std::string out;
  int rc = testing::RunDrover(
      {"logs", "logs", "--grep", "on port"}, &out,
      {"DROVER_ADDR=" + server_->addr(), "DROVER_TOKEN=" + server_->admin_key()});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(" run | on port "), std::string::npos) << out;
}

TEST_F(FleetTest, EnvScaleWaitShowsProgressUntilReady) {
  CreateEnv("cli", 1);
  ASSERT_TRUE(WaitRunning("cli", 1));
  std::string out;
  std::vector<std::string> env = {"DROVER_ADDR=" + server_->addr(),
                                  "DROVER_TOKEN=" + server_->admin_key()};
  ASSERT_EQ(testing::RunDrover({"env", "scale", "cli", "3", "--wait", "60s"}, &out, env), 0) << out;
  EXPECT_NE(out.find("environment/cli scaled to 3"), std::string::npos) << out;
  EXPECT_NE(out.find("3/3 running, phase ready"), std::string::npos) << out;
  EXPECT_EQ(InState("cli", "running").size(), 3u);
  EXPECT_NE(testing::RunDrover({"env", "scale", "cli", "-1"}, &out, env), 0);
  // apply --wait: the same progress for every Environment document.
  testing::TempDir d;
  std::ofstream(d.File("e.yaml"))
      << "kind: Environment\nname: applied\nspec:\n  provider: local\n"
         "  capacity: 2\n  agent: {repository: \""
      << repo_.url() << "\", main_run: ./run.sh}\n  health: {heartbeat_interval: 1s}\n";
  ASSERT_EQ(testing::RunDrover({"apply", "-f", d.File("e.yaml"), "--wait", "60s"}, &out, env), 0)
      << out;
  EXPECT_NE(out.find("environment/applied created"), std::string::npos) << out;
  EXPECT_NE(out.find("2/2 running, phase ready"), std::string::npos) << out;
  Instances("applied");  // remember its agents' pids for the clean-up
}

TEST_F(FleetTest, AHungAgentIsMarkedUnhealthyAndReplaced) {
  CreateEnv("hang", 1, R"(,"unhealthy_after":2)");
  ASSERT_TRUE(WaitRunning("hang", 1)) << server_->Log();
  auto first = InState("hang", "running")[0];
  ASSERT_EQ(::kill(Pid(first), SIGSTOP), 0);  // alive, but silent
  ASSERT_TRUE(WaitFor(
      [&] {
        auto running = InState("hang", "running");
        return running.size() == 1 && Str(running[0], "id") != Str(first, "id");
      },
      60000))
      << server_->Log();
  EXPECT_NE(Events("hang").find("no heartbeat for"), std::string::npos) << Events("hang");
  EXPECT_TRUE(WaitFor([&] { return ::kill(Pid(first), 0) != 0; }, 20000))
      << "the hung agent was stopped";
}

TEST_F(FleetTest, RestartPolicyNeverAndMaxRestartsEndInFailedAndDegraded) {
  CreateEnv("never", 1, R"(,"restart":"never")");
  CreateEnv("twice", 1, R"(,"max_restarts":1)");
  ASSERT_TRUE(WaitRunning("never", 1));
  ASSERT_TRUE(WaitRunning("twice", 1));
  ::kill(Pid(InState("never", "running")[0]), SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return InState("never", "failed").size() == 1; }, 60000));
  // max_restarts 1: the first loss is replaced, the second is final.
  ::kill(Pid(InState("twice", "running")[0]), SIGKILL);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = InState("twice", "running");
        return r.size() == 1 && Str(r[0], "restarts") == "1";
      },
      60000))
      << server_->Log();
  ::kill(Pid(InState("twice", "running")[0]), SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return InState("twice", "failed").size() == 1; }, 60000));
  for (auto env : {"never", "twice"}) {
    auto v = boost::json::parse(
        server_->NewClient().Do("GET", std::string("/v1/environments/") + env)->body);
    EXPECT_EQ(Str(v.at("status"), "phase"), "degraded") << env;
    EXPECT_TRUE(InState(env, "running").empty()) << "nothing replaces a failed instance";
  }
  EXPECT_NE(Events("twice").find("unhealthy after 1 restarts"), std::string::npos)
      << Events("twice");
}

TEST_F(FleetTest, AnIdleEnvironmentScalesItselfToZero) {
  CreateEnv("idle", 2, "", R"(,"idle_timeout":"3s")");
  ASSERT_TRUE(WaitRunning("idle", 2)) << server_->Log();
  std::vector<int> pids;
  for (const auto& i : InState("idle", "running")) pids.push_back(Pid(i));
  // The agents ran once (interval 1 h): after 3 s without activity the environment stops.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto v = boost::json::parse(server_->NewClient().Do("GET", "/v1/environments/idle")->body);
        return Str(v.at("status"), "phase") == "stopped";
      },
      60000))
      << server_->Log();
  EXPECT_NE(Events("idle").find("idle: no activity for"), std::string::npos) << Events("idle");
  for (int p : pids) {
    EXPECT_TRUE(WaitFor([&] { return ::kill(p, 0) != 0; }, 60000))
        << "agent " << p << " still runs\n"
        << Events("idle") << "\n"
        << server_->Log();
  }
  // Scaling it up again wakes it.
  Scale("idle", 1);
  ASSERT_TRUE(WaitRunning("idle", 1)) << server_->Log();
}

TEST_F(FleetTest, DeletingAnEnvironmentStopsItsAgents) {
  CreateEnv("gone", 2);
  ASSERT_TRUE(WaitRunning("gone", 2));
  std::vector<int> pids;
  for (const auto& i : InState("gone", "running")) pids.push_back(Pid(i));
  ASSERT_EQ(server_->NewClient().Do("DELETE", "/v1/environments/gone")->status, 204);
  for (int p : pids)
    EXPECT_TRUE(WaitFor([&] { return ::kill(p, 0) != 0; }, 30000)) << p << server_->Log();
}

TEST(FleetRestart, AgentsOutliveAKilledServerAndAreAdoptedNotDuplicated) {
  GitRepo repo;
  repo.Commit({{"run.sh", "#!/bin/sh\necho hi\n"}}, "v1");
  testing::TempDir dir;
  TestServer server({"--local-instances", "keep"}, dir.path());
  ASSERT_TRUE(server.Start());
  server.KeepPort();
  auto c = server.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/environments/keep",
                 R"({"provider":"local","capacity":2,"agent":{"repository":")" + repo.url() +
                     R"(","main_run":"./run.sh"},"health":{"heartbeat_interval":"1s"}})")
                ->status,
            201);
  std::set<std::string> before;
  std::set<int> pids;
  // The agents outlive servers here by design: stop them however the test ends.
  struct KillAgents {
    std::set<int>& pids;
    ~KillAgents() {
      for (int p : pids) ::kill(-p, SIGKILL);
    }
  } guard{pids};
  auto running = [&](TestServer& s) {
    std::set<std::string> ids;
    auto r = s.NewClient().Do("GET", "/v1/environments/keep/instances");
    if (!r.ok() || r->status != 200) return ids;
    auto page = boost::json::parse(r->body);
    for (const auto& i : page.at("items").as_array()) {
      std::string pid = Str(i, "provider_id");
      if (pid.starts_with("local:")) pids.insert(std::atoi(pid.c_str() + 6));
      if (Str(i, "state") == "running") ids.insert(Str(i, "id"));
    }
    return ids;
  };
  ASSERT_TRUE(WaitFor([&] { return (before = running(server)).size() == 2; }, 60000));
  server.Kill();  // kill -9: the agents run on
  for (int p : pids) EXPECT_EQ(::kill(p, 0), 0) << "agent " << p << " outlived the server";
  ASSERT_TRUE(server.Start());
  // The same two instances are running again (they heartbeat to the new process); none new.
  std::set<std::string> after;
  EXPECT_TRUE(WaitFor(
      [&] {
        after = running(server);
        return after == before;
      },
      30000));
  auto r = server.NewClient().Do("GET", "/v1/environments/keep/instances");
  EXPECT_EQ(boost::json::parse(r->body).at("items").as_array().size(), 2u)
      << "no instance was started twice: " << r->body;
  server.Stop();  // keep: the agents still run; the guard stops them
}

}  // namespace
}  // namespace drover
