// The exec provider against fake cloud CLIs: the bundled contrib/providers scripts run for real
// (sh, python3) and call `aws`, `gcloud`, `az` and `aliyun` stand-ins on PATH that record every
// call. No cloud exists here; everything else is real.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "testing/test_server.h"

namespace drover {
namespace {

using testing::TempDir;
using testing::TestServer;
using testing::WaitFor;

std::string ReadFile(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

void WriteScript(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ::chmod(path.c_str(), 0755);
}

class ExecProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::mkdir(dir_.File("bin").c_str(), 0755);
    // Each fake CLI records its name and arguments, one call per line.
    for (auto cli : {"aws", "gcloud", "az", "aliyun"}) {
      WriteScript(dir_.File(std::string("bin/") + cli),
                  "echo \"$(basename \"$0\") $*\" >> \"$CALLS\"\n");
    }
    const char* path = std::getenv("PATH");
    server_ = std::make_unique<TestServer>(
        std::vector<std::string>{}, "",
        std::vector<std::string>{"PATH=" + dir_.File("bin") + ":" + (path ? path : "/usr/bin:/bin"),
                                 "CALLS=" + calls_});
    ASSERT_TRUE(server_->Start());
  }

  int Put(const std::string& name, const std::string& spec) {
    auto r = server_->NewClient().Do("PUT", "/v1/environments/" + name, spec);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->status : 0;
  }
  std::string Events(const std::string& env) {
    return server_->NewClient().Do("GET", "/v1/environments/" + env + "/events?limit=1000")->body;
  }
  std::vector<std::string> Calls() { return Lines(ReadFile(calls_)); }

  TempDir dir_;
  std::string calls_ = dir_.File("calls.log");
  std::unique_ptr<TestServer> server_;
};

std::string Contrib(const std::string& name) {
  return std::string(DROVER_SOURCE_DIR) + "/contrib/providers/" + name + "/set-capacity.sh";
}

TEST_F(ExecProviderTest, GroupModeScriptsCallEachCloudsCliWithTheResolvedCapacity) {
  struct Case {
    std::string env, script, cloud, region, vars, want;
  };
  std::vector<Case> cases = {
      {"aws", "aws-asg", "aws", "eu-central-1", R"({"ASG_NAME":"sim-workers"})",
       "aws autoscaling set-desired-capacity --auto-scaling-group-name sim-workers "
       "--desired-capacity 5 --region eu-central-1"},
      {"gcp", "gcp-mig", "gcp", "europe-west1", R"({"MIG_NAME":"sim-mig","ZONE":"europe-west1-b"})",
       "gcloud compute instance-groups managed resize sim-mig --size=4 --zone=europe-west1-b "
       "--quiet"},
      {"azure", "azure-vmss", "azure", "westeurope",
       R"({"RESOURCE_GROUP":"rg","VMSS_NAME":"sim-vmss"})",
       "az vmss scale --resource-group rg --name sim-vmss --new-capacity 3 --output none"},
      {"alibaba", "alibaba-ess", "alibaba", "cn-hangzhou", R"({"SCALING_GROUP_ID":"asg-123"})",
       "aliyun ess ModifyScalingGroup --ScalingGroupId asg-123 --DesiredCapacity 2 --RegionId "
       "cn-hangzhou"},
  };
  // One capacity map for all: the most specific level wins for each group.
  std::string capacity =
      R"({"all":2,"aws":{"all":1,"eu-central-1":5},"gcp":4,"azure":{"westeurope":3}})";
  for (const auto& c : cases) {
    std::string spec = R"({"provider":"exec","capacity":)" + capacity +
                       R"(,"exec":{"set_capacity":")" + Contrib(c.script) + R"(","cloud":")" +
                       c.cloud + R"(","region":")" + c.region + R"(","env":)" + c.vars + "}}";
    ASSERT_EQ(Put(c.env, spec), 201) << c.env;
  }
  ASSERT_TRUE(WaitFor([&] { return Calls().size() >= cases.size(); }, 60000)) << server_->Log();
  auto calls = Calls();
  for (const auto& c : cases) {
    EXPECT_NE(std::find(calls.begin(), calls.end(), c.want), calls.end())
        << "missing call: " << c.want << "\ncalls:\n"
        << ReadFile(calls_);
    // The event is written once the call returned: wait for it rather than race it.
    EXPECT_TRUE(WaitFor(
        [&] { return Events(c.env).find("group size set to") != std::string::npos; }, 60000))
        << Events(c.env);
  }
  EXPECT_EQ(calls.size(), cases.size()) << "one call per group";
  // A scale calls again; the same size again does not.
  auto r = server_->NewClient().Do("POST", "/v1/environments/aws/scale", R"({"capacity":7})");
  ASSERT_EQ(r->status, 200);
  ASSERT_TRUE(WaitFor([&] { return Calls().size() == cases.size() + 1; }, 60000));
  EXPECT_EQ(Calls().back(),
            "aws autoscaling set-desired-capacity --auto-scaling-group-name sim-workers "
            "--desired-capacity 7 --region eu-central-1");
  r = server_->NewClient().Do("POST", "/v1/environments/aws/scale", R"({"capacity":7})");
  ASSERT_EQ(r->status, 200);
  // Let the controller run a few rounds (it resyncs every second), then count.
  ASSERT_TRUE(WaitFor([&] { return Events("aws").find("capacity 7 (was 7)") != std::string::npos; },
                      10000));
  ASSERT_FALSE(WaitFor([&] { return Calls().size() > cases.size() + 1; }, 2500))
      << "a no-op change calls nothing";
}

TEST_F(ExecProviderTest, InstanceModeCreatesAndDeletesThroughTheCommands) {
  std::string log = dir_.File("exec.log");
  WriteScript(
      dir_.File("create.sh"),
      "in=$(cat); echo \"create $in\" >> " + log +
          "\nid=$(printf '%s' \"$in\" | python3 -c 'import json,sys; "
          "print(json.load(sys.stdin)[\"instance_id\"])')\n"
          "echo \"{\\\"provider_id\\\":\\\"vm-$id\\\",\\\"address\\\":\\\"10.0.0.7:8080\\\"}\"\n");
  WriteScript(dir_.File("delete.sh"), "echo \"delete $(cat)\" >> " + log + "\n");
  std::string spec = R"({"provider":"exec","capacity":2,"exec":{"create":")" +
                     dir_.File("create.sh") + R"(","delete":")" + dir_.File("delete.sh") +
                     R"(","env":{"CLOUD_ACCOUNT":"test"}}})";
  ASSERT_EQ(Put("vms", spec), 201);
  auto instances = [&] {
    auto r = server_->NewClient().Do("GET", "/v1/environments/vms/instances");
    return boost::json::parse(r->body).at("items").as_array();
  };
  // Both created (the rows come first, then the command, then its answer is recorded).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto all = instances();
        return all.size() == 2 && !all[0].at("address").as_string().empty() &&
               !all[1].at("address").as_string().empty();
      },
      60000))
      << server_->Log();
  auto creates = Lines(ReadFile(log));
  ASSERT_EQ(creates.size(), 2u);
  auto in = boost::json::parse(creates[0].substr(7));
  EXPECT_EQ(in.at("environment").as_string(), "vms");
  EXPECT_TRUE(in.at("join_token").as_string().starts_with("djt_"));
  EXPECT_TRUE(in.at("server_url").as_string().starts_with("http://127.0.0.1:"));
  for (const auto& i : instances()) {
    EXPECT_EQ(i.at("provider_id").as_string(), "vm-" + std::string(i.at("id").as_string()));
    EXPECT_EQ(i.at("address").as_string(), "10.0.0.7:8080");
  }
  ASSERT_EQ(
      server_->NewClient().Do("POST", "/v1/environments/vms/scale", R"({"capacity":1})")->status,
      200);
  ASSERT_TRUE(WaitFor([&] { return Lines(ReadFile(log)).size() == 3; }, 60000));
  auto del = boost::json::parse(Lines(ReadFile(log))[2].substr(7));
  EXPECT_TRUE(del.at("provider_id").as_string().starts_with("vm-i-"));
  // Deleting the environment deletes every machine it still had through the provider too:
  // in the end, each machine created has been deleted.
  auto gone = server_->NewClient().Do("DELETE", "/v1/environments/vms");
  ASSERT_TRUE(gone->status == 200 || gone->status == 204) << gone->body;
  auto undeleted = [&] {
    std::set<std::string> created, deleted;
    for (const auto& line : Lines(ReadFile(log))) {
      auto body = boost::json::parse(line.substr(7));
      if (line.starts_with("create "))
        created.insert("vm-" + std::string(body.at("instance_id").as_string()));
      if (line.starts_with("delete "))
        deleted.insert(std::string(body.at("provider_id").as_string()));
    }
    std::string left;
    for (const auto& id : created)
      if (!deleted.count(id)) left += id + " ";
    return left;
  };
  ASSERT_TRUE(WaitFor([&] { return undeleted().empty(); }, 60000))
      << "never deleted: " << undeleted() << "\n"
      << ReadFile(log) << server_->Log();
}

TEST_F(ExecProviderTest, FailingOrHangingCommandsBecomeEventsWithBackoffNotCrashes) {
  WriteScript(dir_.File("fail.sh"), "cat >/dev/null; echo \"n\" >> " + dir_.File("fails") +
                                        "; echo 'quota exceeded in eu' >&2; exit 3\n");
  WriteScript(dir_.File("hang.sh"), "sleep 300\n");
  ASSERT_EQ(Put("fails", R"({"provider":"exec","capacity":2,"exec":{"set_capacity":")" +
                             dir_.File("fail.sh") + R"("}})"),
            201);
  ASSERT_EQ(Put("hangs", R"({"provider":"exec","capacity":2,"exec":{"set_capacity":")" +
                             dir_.File("hang.sh") + R"(","timeout":"1s"}})"),
            201);
  ASSERT_TRUE(WaitFor(
      [&] { return Events("fails").find("quota exceeded in eu") != std::string::npos; }, 60000))
      << Events("fails");
  EXPECT_NE(Events("fails").find("exited 3"), std::string::npos);
  ASSERT_TRUE(WaitFor(
      [&] { return Events("hangs").find("timed out after 1s") != std::string::npos; }, 60000))
      << Events("hangs");
  // Backoff: over 4 s, a couple of attempts, not one per resync.
  auto t0 = Lines(ReadFile(dir_.File("fails"))).size();
  std::this_thread::sleep_for(std::chrono::seconds(4));
  auto t1 = Lines(ReadFile(dir_.File("fails"))).size();
  EXPECT_LE(t1 - t0, 2u);
  EXPECT_EQ(server_->NewClient().Do("GET", "/healthz")->status, 200);
  // Only admin keys may have the server run commands.
  auto key = boost::json::parse(
      server_->NewClient().Do("POST", "/v1/keys", R"({"name":"u","role":"user"})")->body);
  client::Client user({server_->addr(), std::string(key.at("key").as_string())});
  auto denied = user.Do("PUT", "/v1/environments/mine",
                        R"({"provider":"exec","exec":{"set_capacity":"true"}})");
  EXPECT_EQ(denied->status, 403) << denied->body;
  EXPECT_EQ(user.Do("PUT", "/v1/environments/mine", R"({"provider":"static"})")->status, 201);
  // A spec without its commands is refused.
  auto r = server_->NewClient().Do("PUT", "/v1/environments/bad",
                                   R"({"provider":"exec","exec":{"create":"x"}})");
  EXPECT_EQ(r->status, 422);
  EXPECT_NE(r->body.find("spec.exec.delete"), std::string::npos) << r->body;
}

TEST_F(ExecProviderTest, ListFindsInstancesTheCloudLostAndTheyAreReplaced) {
  std::string cloud = dir_.File("cloud.txt"), down = dir_.File("api-down");
  std::ofstream(cloud).close();
  std::ofstream(down) << "x";
  WriteScript(dir_.File("create.sh"),
              "id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[\"instance_id\"])')\n"
              "echo \"vm-$id\" >> " +
                  cloud + "\necho \"{\\\"provider_id\\\":\\\"vm-$id\\\"}\"\n");
  WriteScript(dir_.File("delete.sh"), "cat >/dev/null\n");
  WriteScript(
      dir_.File("list.sh"),
      "cat >/dev/null\nif [ -e " + down +
          " ]; then echo 'cloud api down' >&2; exit 4; fi\n"
          "python3 -c 'import json,sys; print(json.dumps({\"instances\": [{\"provider_id\": "
          "l.strip()} for l in open(sys.argv[1]) if l.strip()]}))' " +
          cloud + "\n");
  std::string spec = R"({"provider":"exec","capacity":1,"exec":{"create":")" +
                     dir_.File("create.sh") + R"(","delete":")" + dir_.File("delete.sh") +
                     R"(","list":")" + dir_.File("list.sh") +
                     R"("},"health":{"heartbeat_interval":"1s","unhealthy_after":2}})";
  ASSERT_EQ(Put("listed", spec), 201);
  // A failing list is an event, and judges nothing gone.
  ASSERT_TRUE(
      WaitFor([&] { return Events("listed").find("cloud api down") != std::string::npos; }, 60000))
      << Events("listed");
  EXPECT_EQ(Events("listed").find("no longer has it"), std::string::npos);
  std::filesystem::remove(down);
  ASSERT_TRUE(WaitFor([&] { return Lines(ReadFile(cloud)).size() == 1; }, 60000));
  std::string first = Lines(ReadFile(cloud))[0];
  // The cloud loses the machine: the next list notices, and a replacement is created.
  std::ofstream(cloud, std::ios::trunc).close();
  ASSERT_TRUE(WaitFor(
      [&] {
        return Events("listed").find("no longer has it (" + first + ")") != std::string::npos;
      },
      60000))
      << Events("listed");
  ASSERT_TRUE(WaitFor([&] { return Lines(ReadFile(cloud)).size() == 1; }, 60000));
  EXPECT_NE(Lines(ReadFile(cloud))[0], first);
}

}  // namespace
}  // namespace drover
