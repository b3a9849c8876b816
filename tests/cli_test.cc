// The CLI against a real server: tables by default, -o json for scripts, problems on stderr
// with a non-zero exit.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <sstream>

#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::RunDrover;
using testing::TestServer;

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

}  // namespace
}  // namespace drover
