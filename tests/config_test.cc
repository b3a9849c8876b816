// Server configuration: flag > DROVER_* environment > YAML file > default; bad values are clear
// errors with a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/test_server.h"

namespace drover {
namespace {

using testing::RunDrover;
using testing::TestServer;

TEST(Config, PrecedenceFlagOverEnvOverFile) {
  testing::TempDir dir;
  std::string cfg = dir.File("drover.yaml");
  // 0.001 requests/s: the bucket cannot refill between two requests, however slow the machine.
  std::ofstream(cfg) << "log_format: json\nrate-limit: 0.001\nrate_burst: 1\n";
  // The file says json; the environment overrides it with text.
  TestServer s({"--config", cfg}, "", {"DROVER_LOG_FORMAT=text"});
  ASSERT_TRUE(s.Start());
  auto admin = s.NewClient();
  auto k = admin.Do("POST", "/v1/keys", R"({"name":"u","role":"user"})");
  ASSERT_EQ(k->status, 201);
  std::string key = k->body.substr(k->body.find("\"key\":\"") + 7);
  key = key.substr(0, key.find('"'));
  auto user = s.NewClient(key);
  EXPECT_EQ(user.Do("GET", "/v1/status")->status, 200);
  EXPECT_EQ(user.Do("GET", "/v1/status")->status, 429) << "rate limit from the file applies";
  EXPECT_EQ(s.Stop(), 0);
  EXPECT_EQ(s.Log().find("{\"time\""), std::string::npos) << "env beat the file: text logs";

  TestServer flag({"--config", cfg, "--log-format", "json"}, "", {"DROVER_LOG_FORMAT=text"});
  ASSERT_TRUE(flag.Start());
  EXPECT_EQ(flag.Stop(), 0);
  EXPECT_NE(flag.Log().find("{\"time\""), std::string::npos) << "the flag beat the env";
}

TEST(Config, BadSettingsFailClearly) {
  testing::TempDir dir;
  std::string out;
  std::string cfg = dir.File("bad.yaml");
  std::ofstream(cfg) << "colour: blue\n";
  EXPECT_EQ(RunDrover({"server", "--data-dir", dir.path(), "--config", cfg}, &out), 2);
  EXPECT_NE(out.find("unknown setting 'colour'"), std::string::npos) << out;
  EXPECT_NE(RunDrover({"server", "--data-dir", dir.path(), "--idle-timeout", "soon"}, &out), 0);
  EXPECT_NE(out.find("--idle-timeout must be a duration"), std::string::npos) << out;
  EXPECT_NE(RunDrover({"server", "--data-dir", dir.path(), "--db", "mysql://x"}, &out), 0);
  EXPECT_NE(out.find("--db must be sqlite://PATH or postgres://"), std::string::npos) << out;
  EXPECT_EQ(RunDrover({"server", "--data-dir", dir.path(), "--lease-ttl", "0s"}, &out), 2);
  EXPECT_NE(out.find("--lease-ttl must be a duration of at least 1s"), std::string::npos) << out;
  EXPECT_EQ(RunDrover({"server", "--data-dir", dir.path(), "--server-id", "Bad Id"}, &out), 2);
  EXPECT_NE(out.find("--server-id"), std::string::npos) << out;
  EXPECT_EQ(RunDrover({"server", "--data-dir", dir.path(), "--coord-resources", "ok,Not_Ok"}, &out),
            2);
  EXPECT_NE(out.find("--coord-resources: 'Not_Ok'"), std::string::npos) << out;
  EXPECT_NE(
      RunDrover({"server", "--data-dir", dir.path(), "--db", "postgres://nobody@127.0.0.1:1/x"},
                &out),
      0);
  EXPECT_NE(out.find("cannot connect to PostgreSQL"), std::string::npos) << out;
  EXPECT_EQ(RunDrover({"server", "--data-dir", dir.path(), "--providers", "static,cloud"}, &out),
            2);
  EXPECT_NE(out.find("unknown provider 'cloud'"), std::string::npos) << out;
  EXPECT_EQ(RunDrover({"server", "--data-dir", dir.path(), "--audit-retention", "30s"}, &out), 2);
  EXPECT_NE(out.find("--audit-retention must be a duration of at least 1m"), std::string::npos)
      << out;
  EXPECT_EQ(RunDrover({"server", "--data-dir", dir.path(), "--store-read-timeout", "never"}, &out),
            2);
  EXPECT_NE(out.find("--store-read-timeout"), std::string::npos) << out;
  EXPECT_NE(RunDrover({"server", "--data-dir", dir.path(), "--store-threads", "-5"}, &out), 0);
  EXPECT_FALSE(std::filesystem::exists(dir.File("drover.db"))) << "nothing made before the check";
  EXPECT_NE(RunDrover({"server", "--data-dir", dir.path(), "--listen", "nope"}, &out), 0);
  EXPECT_NE(out.find("--listen"), std::string::npos) << out;
  EXPECT_EQ(RunDrover({"server", "--help"}, &out), 0);
  for (const char* flag :
       {"--listen", "--db", "--data-dir", "--dev", "--log-format", "--log-level", "--config",
        "--migrate-only", "--rate-limit", "--body-limit", "DROVER_"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
}

TEST(Config, SecondServerOnTheSameSqliteFileIsRefused) {
  TestServer a;
  ASSERT_TRUE(a.Start());
  std::string out;
  EXPECT_EQ(RunDrover({"server", "--data-dir", a.data_dir(), "--listen", "127.0.0.1:0"}, &out), 1);
  EXPECT_NE(out.find("in use by another drover server"), std::string::npos) << out;
}

}  // namespace
}  // namespace drover
