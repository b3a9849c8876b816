// kill -9 during concurrent writes: every write answered 2xx is there after a restart.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::AllVariables;
using testing::TestServer;

// SIGTERM while writes are in flight: the server answers what it accepted, exits 0, and every
// acknowledged write is there on restart.
class Shutdown : public testing::BackendTest {};
DROVER_ON_ALL_BACKENDS(Shutdown);
class Crash : public testing::BackendTest {};
DROVER_ON_ALL_BACKENDS(Crash);

TEST_P(Shutdown, SigtermDrainsInFlightWrites) {
  testing::TempDir dir;
  std::vector<std::string> acked;
  std::atomic<int> answered_5xx{0};
  {
    TestServer s(DbArgs({"--access-log", "false"}), dir.path());
    ASSERT_TRUE(s.Start());
    std::mutex mu;
    std::atomic<int> total{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t) {
      writers.emplace_back([&, t] {
        auto c = s.NewClient();
        for (int i = 0; i < 5000; ++i) {
          std::string key = "g" + std::to_string(t) + "-" + std::to_string(i);
          auto r = c.Do("PUT", "/v1/variables/" + key, R"({"value":")" + key + "\"}");
          if (!r.ok()) return;  // connection closed by the stopping server
          if (r->status >= 500) answered_5xx++;
          if (r->status == 201) {
            std::lock_guard lock(mu);
            acked.push_back(key);
            total++;
          }
        }
      });
    }
    ASSERT_TRUE(testing::WaitFor([&] { return total.load() >= 300; }, 60000));
    EXPECT_EQ(s.Stop(), 0) << s.Log();
    for (auto& w : writers) w.join();
  }
  EXPECT_EQ(answered_5xx.load(), 0) << "a draining server answers, it does not fail requests";
  TestServer again(DbArgs({"--access-log", "false"}), dir.path());
  ASSERT_TRUE(again.Start());
  auto c = again.NewClient();
  auto present = AllVariables(c);
  size_t missing = 0;
  for (const auto& k : acked) missing += !present.contains(k);
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
}

TEST_P(Crash, Kill9LosesNoAcknowledgedWrite) {
  testing::TempDir dir;
  std::vector<std::string> acked;
  {
    TestServer s(DbArgs({"--access-log", "false"}), dir.path());
    ASSERT_TRUE(s.Start());
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<int> total{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t) {
      writers.emplace_back([&, t] {
        auto c = s.NewClient();
        for (int i = 0; i < 5000 && !stop; ++i) {
          std::string key = "w" + std::to_string(t) + "-" + std::to_string(i);
          auto r = c.Do("PUT", "/v1/variables/" + key, R"({"value":")" + key + "\"}");
          if (!r.ok()) return;  // the server is gone
          if (r->status == 201) {
            std::lock_guard lock(mu);
            acked.push_back(key);
            total++;
          }
        }
      });
    }
    // Kill while writes are in flight, once a good number have been acknowledged.
    ASSERT_TRUE(testing::WaitFor([&] { return total.load() >= 300; }, 60000));
    s.Kill();
    stop = true;
    for (auto& w : writers) w.join();
  }
  ASSERT_GE(acked.size(), 300u);
  TestServer again(DbArgs({"--access-log", "false"}), dir.path());
  ASSERT_TRUE(again.Start());
  auto c = again.NewClient();
  auto present = AllVariables(c);
  for (const auto& [k, v] : present) EXPECT_EQ(k, v) << "a value must never be torn";
  size_t missing = 0;
  for (const auto& k : acked) missing += !present.contains(k);
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
}

// Log lines are answered 202 once committed: none a sender was told is stored is lost.
TEST_P(Crash, Kill9LosesNoAcknowledgedLogLine) {
  testing::TempDir dir;
  std::vector<std::string> acked;
  {
    TestServer s(DbArgs({"--access-log", "false"}), dir.path());
    ASSERT_TRUE(s.Start());
    auto admin = s.NewClient();
    auto env = admin.Do("PUT", "/v1/environments/web", R"({"provider":"static","capacity":1})");
    ASSERT_EQ(env->status, 201) << env->body;
    auto token = boost::json::parse(env->body).at("join_token").as_string();
    auto join =
        client::Client({s.addr(), std::string(token)}).Do("POST", "/v1/environments/web/join", "");
    ASSERT_EQ(join->status, 201) << join->body;
    auto j = boost::json::parse(join->body);
    std::string path = "/v1/instances/" + std::string(j.at("instance_id").as_string()) + "/logs";
    std::string key(j.at("agent_key").as_string());
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<int> total{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t) {
      senders.emplace_back([&, t] {
        auto c = s.NewClient(key);
        for (int b = 0; b < 5000 && !stop; ++b) {
          std::vector<std::string> batch;
          std::string body = "{\"lines\":[";
          for (int i = 0; i < 20; ++i) {
            batch.push_back(fmt::format("s{}-b{}-l{}", t, b, i));
            body += fmt::format(
                "{}{{\"at\":\"2026-12-07T10:00:00Z\",\"stream\":\"run\",\"line\":\"{}\"}}",
                i ? "," : "", batch.back());
          }
          body += "]}";
          auto r = c.Do("POST", path, body);
          if (!r.ok()) return;  // the server is gone
          if (r->status == 202) {
            std::lock_guard lock(mu);
            acked.insert(acked.end(), batch.begin(), batch.end());
            total += 20;
          }
        }
      });
    }
    ASSERT_TRUE(testing::WaitFor([&] { return total.load() >= 2000; }, 60000));
    s.Kill();
    stop = true;
    for (auto& w : senders) w.join();
  }
  TestServer again(DbArgs({"--access-log", "false"}), dir.path());
  ASSERT_TRUE(again.Start());
  auto c = again.NewClient();
  std::set<std::string> present;
  std::string after = "0";
  for (int page = 0; page < 10000; ++page) {
    auto r = c.Do("GET", "/v1/logs?limit=5000&after=" + after);
    ASSERT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : "unreachable");
    auto v = boost::json::parse(r->body);
    const auto& items = v.at("items").as_array();
    for (const auto& l : items) present.emplace(l.at("line").as_string());
    if (items.empty()) break;
    after = std::string(v.at("next").as_string());
  }
  size_t missing = 0;
  for (const auto& l : acked) missing += !present.contains(l);
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged log lines";
}

}  // namespace
}  // namespace drover
