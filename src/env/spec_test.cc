#include "env/spec.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "common/yaml.h"

namespace drover::env {
namespace {

constexpr std::string_view kExample = R"(
kind: Environment
name: sim-eu
spec:
  provider: static
  capacity: 3
  agent:
    repository: file:///srv/repos/sim.git
    ref: main
    type: shell
    main_run: ./run.sh
    pre_run: echo start
    post_run: echo done
    delay: 0
    interval: 60
    vars: {build-tag: v7}
  health:
    heartbeat_interval: 5s
    unhealthy_after: 3
    restart: always
    max_restarts: 10
  idle_timeout: 2h
  service: {port: 8080, health_path: /healthz}
)";

std::vector<std::string> Fields(const Status& s) {
  std::vector<std::string> out;
  for (const auto& e : s.errors()) out.push_back(e.field);
  return out;
}

TEST(EnvironmentSpec, ParsesTheSpecExampleAndPublishesTheAgentBlock) {
  auto doc = ParseYaml(kExample);
  ASSERT_TRUE(doc.ok());
  auto spec = ParseEnvironmentDocument(*doc, "sim-eu");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->provider, "static");
  EXPECT_EQ(spec->capacity, "3");
  EXPECT_EQ(spec->agent_vars.at("cc-a-repository"), "file:///srv/repos/sim.git");
  EXPECT_EQ(spec->agent_vars.at("cc-a-main-run"), "./run.sh");
  EXPECT_EQ(spec->agent_vars.at("cc-a-interval"), "60");
  EXPECT_EQ(spec->agent_vars.at("cc-a-build-tag"), "v7");
  EXPECT_EQ(spec->health.heartbeat_interval, std::chrono::seconds(5));
  EXPECT_EQ(spec->idle_timeout, std::chrono::hours(2));
  ASSERT_TRUE(spec->service);
  EXPECT_EQ(spec->service->port, 8080);
  // Canonical JSON parses back to the same spec.
  auto again = ParseEnvironmentDocument(boost::json::parse(SpecToJson(*spec)), "sim-eu");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(SpecToJson(*again), SpecToJson(*spec));
}

TEST(EnvironmentSpec, BareSpecAndCapacityMap) {
  auto spec = ParseEnvironmentDocument(
      boost::json::parse(R"({"provider":"static","capacity":{"all":2,"aws":{"eu-central-1":1}}})"),
      "x");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_NE(SpecToJson(*spec).find(R"("capacity":{"all":2,"aws":{"eu-central-1":1}})"),
            std::string::npos)
      << SpecToJson(*spec);
}

TEST(EnvironmentSpec, EveryProblemIsAFieldError) {
  auto doc = boost::json::parse(R"({"kind":"Env","name":"other","spec":{
      "provider":"cloud","capacity":-1,"colour":"red",
      "agent":{"type":"puppet","force_run":"maybe","delay":"soon","repository":"not a url",
               "vars":{"Bad_Name":"x"},"extra":1},
      "health":{"heartbeat_interval":"0s","unhealthy_after":0,"restart":"sometimes",
                "max_restarts":-1},
      "idle_timeout":"forever","service":{"port":70000,"health_path":"healthz"}}})");
  auto spec = ParseEnvironmentDocument(doc, "sim");
  ASSERT_FALSE(spec.ok());
  auto fields = Fields(spec.status());
  for (auto f : {"kind", "name", "spec.provider", "spec.capacity", "spec.colour", "spec.agent.type",
                 "spec.agent.force_run", "spec.agent.delay", "spec.agent.repository",
                 "spec.agent.vars", "spec.agent.extra", "spec.health.heartbeat_interval",
                 "spec.health.unhealthy_after", "spec.health.restart", "spec.health.max_restarts",
                 "spec.idle_timeout", "spec.service.port", "spec.service.health_path"}) {
    EXPECT_NE(std::find(fields.begin(), fields.end(), f), fields.end()) << "no error for " << f;
  }
}

TEST(EnvironmentSpec, WrongShapes) {
  EXPECT_FALSE(ParseEnvironmentDocument(boost::json::parse("[1]"), "x").ok());
  auto s = ParseEnvironmentDocument(boost::json::parse(R"({"kind":"Environment","spec":3})"), "x");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Fields(s.status()), std::vector<std::string>{"spec"});
  auto agent = ParseEnvironmentDocument(boost::json::parse(R"({"agent":"x"})"), "x");
  ASSERT_FALSE(agent.ok());
  EXPECT_EQ(Fields(agent.status()), std::vector<std::string>{"spec.agent"});
}

}  // namespace
}  // namespace drover::env

namespace drover::env {
namespace {

TEST(ProviderPolicy, LocalAndExecRunOnTheHostSoTheyNeedAnAdmin) {
  EnvironmentSpec local, exec, stat;
  local.provider = "local";
  exec.provider = "exec";
  stat.provider = "static";
  auto prod = ProviderPolicy::Default(false);
  EXPECT_EQ(prod.enabled, (std::set<std::string>{"static", "exec"}));
  EXPECT_EQ(prod.Allow(local, true).code(), Status::Code::kValidation) << "not enabled";
  EXPECT_EQ(prod.Allow(local, true).errors().at(0).field, "spec.provider");
  EXPECT_EQ(prod.Allow(exec, false).code(), Status::Code::kPermissionDenied);
  EXPECT_TRUE(prod.Allow(exec, true).ok());
  EXPECT_TRUE(prod.Allow(stat, false).ok());
  auto all = ProviderPolicy::Parse("static,exec,local", false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->Allow(local, false).code(), Status::Code::kPermissionDenied);
  EXPECT_TRUE(all->Allow(local, true).ok());
  auto dev = ProviderPolicy::Default(true);
  EXPECT_TRUE(dev.Allow(local, false).ok()) << "a --dev server is a laptop";
  EXPECT_EQ(dev.Allow(exec, false).code(), Status::Code::kPermissionDenied);
  EXPECT_FALSE(ProviderPolicy::Parse("static,cloud", false).ok());
  EXPECT_FALSE(ProviderPolicy::Parse("", false).ok());
}

}  // namespace
}  // namespace drover::env
