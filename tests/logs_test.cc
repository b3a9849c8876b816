// The log store over HTTP on real servers, both backends: lines an agent sends, read back with
// filters, followed by a long poll and an event stream; tenants apart; a flood accounted for;
// the size cap applied by the cleanup.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <thread>

#include "testing/raw_http.h"
#include "testing/store_fixture.h"
#include "testing/temp_dir.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::TestServer;

boost::json::value Json(const client::Response& r) { return boost::json::parse(r.body); }

class Logs : public testing::BackendTest {
 protected:
  void Start(std::vector<std::string> more = {}) {
    server_ = std::make_unique<TestServer>(DbArgs(std::move(more)));
    ASSERT_TRUE(server_->Start());
    auto admin = server_->NewClient();
    auto env = admin.Do("PUT", "/v1/environments/web", R"({"provider":"static","capacity":1})");
    ASSERT_EQ(env->status, 201) << env->body;
    auto join =
        client::Client({server_->addr(), std::string(Json(*env).at("join_token").as_string())})
            .Do("POST", "/v1/environments/web/join", "");
    ASSERT_EQ(join->status, 201) << join->body;
    auto j = Json(*join);
    instance_ = std::string(j.at("instance_id").as_string());
    agent_key_ = std::string(j.at("agent_key").as_string());
  }

  // Sends lines as the instance's agent; returns the answer's status.
  int Send(const std::vector<std::string>& lines, const std::string& stream = "run",
           const std::string& trace = "") {
    std::string body = "{\"lines\":[";
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) body += ',';
      boost::json::object l{
          {"at", "2026-12-07T10:00:00.000Z"}, {"stream", stream}, {"line", lines[i]}};
      if (!trace.empty()) l["trace_id"] = trace;
      body += boost::json::serialize(l);
    }
    body += "]}";
    auto r =
        server_->NewClient(agent_key_).Do("POST", "/v1/instances/" + instance_ + "/logs", body);
    return r.ok() ? r->status : -1;
  }

  std::vector<std::string> Lines(const std::string& query, client::Client* who = nullptr) {
    auto c = server_->NewClient();
    auto r = (who ? *who : c).Do("GET", "/v1/logs?" + query);
    std::vector<std::string> out;
    if (!r.ok() || r->status != 200) return {"error: " + (r.ok() ? r->body : "unreachable")};
    auto v = Json(*r);
    for (const auto& l : v.at("items").as_array()) out.emplace_back(l.at("line").as_string());
    return out;
  }

  std::unique_ptr<TestServer> server_;
  std::string instance_, agent_key_;
};
DROVER_ON_ALL_BACKENDS(Logs);

TEST_P(Logs, LinesAreStoredFilteredAndKeptToTheirTenant) {
  Start();
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  ASSERT_EQ(Send({"starting", "listening on 8080", "GET / 200 3 ms"}), 202);
  ASSERT_EQ(Send({"request failed: 502"}, "app.log", trace), 202);
  // Committed in batches: wait for them.
  ASSERT_TRUE(testing::WaitFor([&] { return Lines("environment=web").size() == 4; }));
  EXPECT_EQ(Lines("environment=web"),
            (std::vector<std::string>{"starting", "listening on 8080", "GET / 200 3 ms",
                                      "request failed: 502"}));
  EXPECT_EQ(Lines("environment=web&limit=2"),
            (std::vector<std::string>{"GET / 200 3 ms", "request failed: 502"}));
  EXPECT_EQ(Lines("environment=web&q=failed"), (std::vector<std::string>{"request failed: 502"}));
  EXPECT_EQ(Lines("environment=web&q=/%5E%5Ba-z%5D%2B%20on%20%5Cd%2B%24/"),  // /^[a-z]+ on \d+$/
            (std::vector<std::string>{"listening on 8080"}));
  EXPECT_EQ(Lines("trace=" + trace), (std::vector<std::string>{"request failed: 502"}));
  EXPECT_EQ(Lines("environment=web&instance=i-nope").size(), 0u);
  EXPECT_EQ(Lines("environment=web&since=2026-12-07T11:00:00Z").size(), 0u);
  auto c = server_->NewClient();
  auto r = c.Do("GET", "/v1/logs?environment=web&limit=1");
  auto v = Json(*r);
  const auto& line = v.at("items").as_array()[0];
  EXPECT_EQ(line.at("instance").as_string(), instance_);
  EXPECT_EQ(line.at("stream").as_string(), "app.log");
  EXPECT_EQ(line.at("trace_id").as_string(), trace);
  EXPECT_EQ(line.at("at").as_string(), "2026-12-07T10:00:00.000Z");
  // Paging on from the oldest.
  auto first = Json(*c.Do("GET", "/v1/logs?environment=web&since=2026-12-07T09:00:00Z&limit=3"));
  ASSERT_EQ(first.at("items").as_array().size(), 3u);
  std::string next(first.at("next").as_string());
  EXPECT_EQ(Lines("environment=web&limit=3&after=" + next),
            (std::vector<std::string>{"request failed: 502"}));

  // Another tenant sees none of it, and cannot send as this instance.
  auto kr = c.Do("POST", "/v1/keys", R"({"name":"b","role":"user","tenant":"team-b"})");
  ASSERT_EQ(kr->status, 201);
  auto b = server_->NewClient(std::string(Json(*kr).at("key").as_string()));
  EXPECT_EQ(b.Do("GET", "/v1/logs?environment=web")->status, 404);
  EXPECT_EQ(Lines("trace=" + trace, &b).size(), 0u);
  EXPECT_EQ(Lines("limit=100", &b).size(), 0u);
  EXPECT_EQ(b.Do("POST", "/v1/instances/" + instance_ + "/logs", R"({"lines":[]})")->status, 404);
}

TEST_P(Logs, ALongPollAndAnEventStreamGetNewLines) {
  Start();
  ASSERT_EQ(Send({"before"}), 202);
  ASSERT_TRUE(testing::WaitFor([&] { return Lines("environment=web").size() == 1; }));
  auto c = server_->NewClient();
  auto tail = Json(*c.Do("GET", "/v1/logs?environment=web"));
  std::string next(tail.at("next").as_string());

  // An event stream from now on (after the tail it shows first).
  int fd = testing::ConnectTo(testing::PortOf(*server_));
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testing::WriteAll(fd,
                                "GET /v1/logs?environment=web&follow=true HTTP/1.1\r\nHost: x"
                                "\r\nAuthorization: Bearer " +
                                    server_->admin_key() + "\r\n\r\n"));
  std::string got;
  ASSERT_TRUE(testing::ReadUntil(fd, &got, "before")) << got;

  auto poll = std::async(std::launch::async, [&] {
    auto pc = server_->NewClient();
    auto r = pc.Do("GET", "/v1/logs?environment=web&wait=30s&after=" + next);
    return r.ok() ? r->body : std::string("unreachable");
  });
  ASSERT_EQ(Send({"after one"}), 202);
  std::string polled = poll.get();
  EXPECT_NE(polled.find("after one"), std::string::npos) << polled;
  EXPECT_EQ(polled.find("before"), std::string::npos) << polled;
  ASSERT_TRUE(testing::ReadUntil(fd, &got, "after one")) << got;
  EXPECT_NE(got.find("id: "), std::string::npos) << got;
  ::close(fd);
}

// Many lines at once: a sender that sends a refused batch again (as the agent does) gets every
// line stored, and the API answers other calls meanwhile.
TEST_P(Logs, AFloodIsStoredAndTheApiAnswersMeanwhile) {
  Start();
  constexpr int kPosts = 100, kPerPost = 1000;
  std::atomic<bool> done{false};
  std::atomic<int> answered{0}, failed{0};
  std::thread reader([&] {
    auto c = server_->NewClient();
    while (!done) {
      auto r = c.Do("GET", "/v1/environments/web");
      (r.ok() && r->status == 200 ? answered : failed)++;
    }
  });
  int64_t accepted = 0, refused = 0;
  auto agent = server_->NewClient(agent_key_);
  std::string line(100, 'x');
  for (int p = 0; p < kPosts; ++p) {
    std::string body = "{\"lines\":[";
    for (int i = 0; i < kPerPost; ++i) {
      if (i) body += ',';
      body += R"({"at":"2026-12-07T10:00:00Z","stream":"run","line":")" + line + "\"}";
    }
    body += "]}";
    // As an agent does: a full buffer (429) means the same batch again shortly.
    for (;;) {
      auto r = agent.Do("POST", "/v1/instances/" + instance_ + "/logs", body);
      ASSERT_TRUE(r.ok());
      if (r->status == 429) {
        EXPECT_EQ(r->Header("Retry-After"), "1");
        ++refused;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      ASSERT_EQ(r->status, 202) << r->body;
      accepted += Json(*r).at("accepted").as_int64();
      break;
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(accepted, kPosts * kPerPost);
  RecordProperty("refused_batches", static_cast<int>(refused));
  EXPECT_GT(answered.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  // Everything accepted is stored (the metric counts it).
  auto c = server_->NewClient();
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto m = c.Do("GET", "/metrics");
        return m.ok() && m->body.find("drover_log_lines_total " + std::to_string(accepted) +
                                      "\n") != std::string::npos;
      },
      120000))
      << c.Do("GET", "/metrics")->body.substr(0, 200);
}

// Over its cap, a tenant's oldest lines go at the next cleanup (every minute).
TEST_P(Logs, TheCleanupKeepsATenantUnderItsCap) {
  Start({"--log-max-bytes", "20000"});
  for (int i = 0; i < 10; ++i) {
    std::vector<std::string> batch;
    for (int k = 0; k < 20; ++k)
      batch.push_back("line " + std::to_string(i * 20 + k) + " " + std::string(100, 'y'));
    ASSERT_EQ(Send(batch), 202);
  }
  auto oldest = [&] {
    auto l = Lines("environment=web&since=2026-01-01T00:00:00Z&limit=1");
    return l.empty() ? std::string() : l[0].substr(0, l[0].find(' ', 5));
  };
  ASSERT_TRUE(testing::WaitFor([&] {
    return Lines("environment=web&limit=1").size() == 1 &&
           Lines("environment=web&limit=1")[0].starts_with("line 199");
  }));
  // (The cleanup may already have run: it runs on the minute.)
  ASSERT_TRUE(testing::WaitFor([&] { return oldest() != "line 0"; }, 150000)) << oldest();
  // The newest stay, and what is left fits the cap: ~160 bytes a line, 20,000 bytes at most.
  EXPECT_TRUE(Lines("environment=web&limit=1")[0].starts_with("line 199"));
  size_t left = Lines("environment=web&limit=1000").size();
  EXPECT_GT(left, 20u);
  EXPECT_LT(left, 130u);
}

}  // namespace
}  // namespace drover
