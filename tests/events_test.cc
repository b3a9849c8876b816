// The change feed (/v1/events: server-sent events and long-poll JSON) and the audit log
// (/v1/audit) of a real server, on both backends; and what a streaming route does when its
// client goes away.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <future>
#include <thread>

#include "testing/raw_http.h"
#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::ConnectTo;
using testing::PortOf;
using testing::ReadUntil;
using testing::TestServer;
using testing::WriteAll;

boost::json::value Json(const client::Response& r) { return boost::json::parse(r.body); }

class Events : public testing::BackendTest {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(DbArgs());
    ASSERT_TRUE(server_->Start());
  }
  // A new key of `role` in `tenant`; returns its secret.
  std::string NewKey(const std::string& role, const std::string& tenant,
                     std::string* id = nullptr) {
    auto c = server_->NewClient();
    auto r = c.Do("POST", "/v1/keys",
                  R"({"name":"k-)" + role + "-" + tenant + R"(","role":")" + role +
                      R"(","tenant":")" + tenant + R"("})");
    EXPECT_EQ(r->status, 201) << r->body;
    auto v = Json(*r);
    if (id) *id = std::string(v.at("id").as_string());
    return std::string(v.at("key").as_string());
  }
  // Opens an event stream with `query` and extra header lines; returns the socket.
  int OpenStream(const std::string& query, const std::string& key,
                 const std::string& headers = "") {
    int fd = ConnectTo(PortOf(*server_));
    EXPECT_TRUE(WriteAll(fd, "GET /v1/events" + query +
                                 " HTTP/1.1\r\nHost: x\r\nAuthorization: " + "Bearer " + key +
                                 "\r\nAccept: text/event-stream\r\n" + headers + "\r\n"));
    return fd;
  }
  int64_t PutVariable(const std::string& name, const std::string& key = "") {
    auto c = server_->NewClient(key);
    auto r = c.Do("PUT", "/v1/variables/" + name, R"({"value":"v"})");
    EXPECT_TRUE(r->ok()) << r->body;
    return std::stoll(r->Header("X-Drover-Index"));
  }
  // Waits until `pred` holds for /metrics' text.
  bool WaitForMetrics(const std::function<bool(const std::string&)>& pred) {
    auto c = server_->NewClient();
    for (int i = 0; i < 600; ++i) {
      auto m = c.Do("GET", "/metrics");
      if (m.ok() && pred(m->body)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::unique_ptr<TestServer> server_;
};

DROVER_ON_ALL_BACKENDS(Events);

// The ids of the events in an SSE text, in order.
std::vector<int64_t> EventIds(const std::string& text) {
  std::vector<int64_t> ids;
  for (size_t pos = 0; (pos = text.find("\nid: ", pos)) != std::string::npos; pos += 5) {
    ids.push_back(std::stoll(text.substr(pos + 5)));
  }
  return ids;
}

TEST_P(Events, AStreamDeliversEachChangeWithItsSequenceAndKeepsAliveWithComments) {
  int fd = OpenStream("?heartbeat=1s", server_->admin_key());
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, &got, "retry: ")) << got;
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200")) << got;
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  EXPECT_NE(got.find("Cache-Control: no-cache"), std::string::npos) << got;
  int64_t index = PutVariable("cc-one");
  ASSERT_TRUE(ReadUntil(fd, &got, "\"name\":\"cc-one\"")) << got;
  EXPECT_NE(got.find("\nid: " + std::to_string(index) + "\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\"kind\":\"variable\",\"name\":\"cc-one\",\"op\":\"set\""),
            std::string::npos);
  EXPECT_EQ(got.find("\"value\""), std::string::npos) << "never a variable's value";
  ASSERT_TRUE(ReadUntil(fd, &got, "\n: heartbeat\n")) << got;
  close(fd);
}

TEST_P(Events, AReconnectingStreamResumesAfterLastEventId) {
  int64_t first = PutVariable("cc-a");
  int64_t second = PutVariable("cc-b");
  int fd = OpenStream("", server_->admin_key(), "Last-Event-ID: " + std::to_string(first) + "\r\n");
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, &got, "\"name\":\"cc-b\"")) << got;
  EXPECT_EQ(got.find("\"name\":\"cc-a\""), std::string::npos) << got;
  // Everything after `first`, in order (other changes, like the built-in alert rules a new
  // server gives its tenants, may come in between).
  auto ids = EventIds(got);
  ASSERT_FALSE(ids.empty());
  EXPECT_GT(ids.front(), first);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_NE(std::find(ids.begin(), ids.end(), second), ids.end()) << got;
  close(fd);
  // Without Last-Event-ID or ?after= a stream starts from now: nothing old.
  fd = OpenStream("", server_->admin_key());
  got.clear();
  ASSERT_TRUE(ReadUntil(fd, &got, "retry: "));
  PutVariable("cc-c");
  ASSERT_TRUE(ReadUntil(fd, &got, "\"name\":\"cc-c\"")) << got;
  EXPECT_EQ(got.find("\"name\":\"cc-a\""), std::string::npos) << got;
  close(fd);
}

TEST_P(Events, ALongPollWaitsForTheNextChangeAndPagesFilterByKind) {
  auto c = server_->NewClient();
  auto now = c.Do("GET", "/v1/events?kinds=variable");
  ASSERT_EQ(now->status, 200) << now->body;
  int64_t last = Json(*now).at("last").as_int64();
  auto waiting = std::async(std::launch::async, [&] {
    return server_->NewClient().Do(
        "GET", "/v1/events?kinds=variable&wait=60s&after=" + std::to_string(last));
  });
  // Not answered before there is something to answer with.
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  int64_t index = PutVariable("cc-poll");
  auto r = waiting.get();
  ASSERT_EQ(r->status, 200) << r->body;
  auto v = Json(*r);
  auto events = v.at("events").as_array();
  ASSERT_EQ(events.size(), 1u) << r->body;
  EXPECT_EQ(events[0].at("seq").as_int64(), index);
  EXPECT_EQ(events[0].at("actor").at("role").as_string(), "admin");
  EXPECT_GE(v.at("last").as_int64(), index);
  // Other kinds are not in a filtered page; a full page ends at its last record.
  auto envs = c.Do("GET", "/v1/events?kinds=environment,schedule&after=0");
  EXPECT_TRUE(Json(*envs).at("events").as_array().empty()) << envs->body;
  PutVariable("cc-poll2");
  auto page = c.Do("GET", "/v1/events?kinds=variable&after=0&limit=1");
  auto pv = Json(*page);
  ASSERT_EQ(pv.at("events").as_array().size(), 1u);
  EXPECT_EQ(pv.at("last").as_int64(), pv.at("events").as_array()[0].at("seq").as_int64());
}

TEST_P(Events, EachTenantSeesOnlyItsOwnChanges) {
  std::string b_key = NewKey("user", "b");
  PutVariable("cc-in-default");
  PutVariable("cc-in-b", b_key);
  auto b = server_->NewClient(b_key);
  auto mine = b.Do("GET", "/v1/events?after=0&kinds=variable");
  ASSERT_EQ(mine->status, 200) << mine->body;
  auto events = Json(*mine).at("events").as_array();
  ASSERT_EQ(events.size(), 1u) << mine->body;
  EXPECT_EQ(events[0].at("name").as_string(), "cc-in-b");
  EXPECT_EQ(b.Do("GET", "/v1/events?tenant=default")->status, 404);
  EXPECT_EQ(b.Do("GET", "/v1/audit?tenant=default")->status, 404);
  // An admin sees every tenant, or the one it names.
  auto admin = server_->NewClient();
  auto only_b = Json(*admin.Do("GET", "/v1/events?after=0&tenant=b&kinds=variable"));
  EXPECT_EQ(only_b.at("events").as_array().size(), 1u);
  auto all = Json(*admin.Do("GET", "/v1/events?after=0&kinds=variable"));
  EXPECT_EQ(all.at("events").as_array().size(), 2u);
  // Agents have no feed.
  std::string agent = NewKey("agent", "default");
  EXPECT_EQ(server_->NewClient(agent).Do("GET", "/v1/events")->status, 403);
}

TEST_P(Events, TheAuditLogHasAcceptedAndRefusedCallsButNoSystemWork) {
  std::string viewer_id;
  std::string viewer = NewKey("viewer", "default", &viewer_id);
  PutVariable("cc-audited");
  auto v = server_->NewClient(viewer);
  EXPECT_EQ(v.Do("PUT", "/v1/variables/cc-nope", R"({"value":"x"})")->status, 403);
  auto anon = client::Client({server_->addr(), "drv_not_a_key"});
  EXPECT_EQ(anon.Do("DELETE", "/v1/keys/k_123")->status, 401);
  auto c = server_->NewClient();
  // Refusals are written on their own, after the answer: wait for both.
  boost::json::array items;
  for (int i = 0; i < 600; ++i) {
    items = Json(*c.Do("GET", "/v1/audit?limit=1000")).at("items").as_array();
    size_t refused = 0;
    for (const auto& it : items) refused += it.at("result").as_string() == "refused";
    if (refused >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto find = [&](std::string_view actor) -> const boost::json::object* {
    for (const auto& it : items) {
      if (it.at("actor").at("key").as_string() == actor) return &it.as_object();
    }
    return nullptr;
  };
  const auto* denied = find(viewer_id);
  ASSERT_NE(denied, nullptr) << boost::json::serialize(items);
  EXPECT_EQ(denied->at("status").as_int64(), 403);
  EXPECT_EQ(denied->at("kind").as_string(), "variable");
  EXPECT_EQ(denied->at("name").as_string(), "cc-nope");
  EXPECT_EQ(denied->at("actor").at("role").as_string(), "viewer");
  EXPECT_FALSE(denied->at("request_id").as_string().empty());
  const auto* unknown = find("anonymous");
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(unknown->at("status").as_int64(), 401);
  EXPECT_EQ(unknown->at("kind").as_string(), "key");
  EXPECT_EQ(boost::json::serialize(items).find("drv_not_a_key"), std::string::npos)
      << "never a key";
  // The accepted call, by the admin; filters and paging.
  auto mine = Json(*c.Do("GET", "/v1/audit?kind=variable&actor=" + viewer_id));
  EXPECT_EQ(mine.at("items").as_array().size(), 1u);
  auto page = Json(*c.Do("GET", "/v1/audit?limit=1"));
  ASSERT_TRUE(page.at("next_cursor").is_string());
  auto next = Json(
      *c.Do("GET", "/v1/audit?limit=1&cursor=" + std::string(page.at("next_cursor").as_string())));
  EXPECT_LT(next.at("items").as_array()[0].at("seq").as_int64(),
            page.at("items").as_array()[0].at("seq").as_int64());
  auto future = Json(*c.Do("GET", "/v1/audit?since=2199-01-01T00:00:00Z"));
  EXPECT_TRUE(future.at("items").as_array().empty());
  for (const auto& it : items) {
    EXPECT_NE(it.at("actor").at("role").as_string(), "system") << "system work is not audited";
  }
}

TEST_P(Events, BadParametersAre400WithTheirName) {
  auto c = server_->NewClient();
  for (const char* q : {"?after=-1", "?after=x", "?kinds=BAD!", "?wait=forever", "?wait=11m",
                        "?limit=0", "?limit=1001", "?heartbeat=0s"}) {
    auto r = c.Do("GET", std::string("/v1/events") + q);
    EXPECT_EQ(r->status, 400) << q << ": " << r->body;
    EXPECT_NE(r->Header("Content-Type").find("problem+json"), std::string::npos);
  }
  auto sse =
      c.Do("GET", "/v1/events", "", {{"Accept", "text/event-stream"}, {"Last-Event-ID", "abc"}});
  EXPECT_EQ(sse->status, 400) << sse->body;
  for (const char* q : {"?since=yesterday", "?until=2026-13-01T00:00:00Z", "?cursor=-5",
                        "?kind=Not%20a%20kind", "?limit=abc"}) {
    auto r = c.Do("GET", std::string("/v1/audit") + q);
    EXPECT_EQ(r->status, 400) << q << ": " << r->body;
  }
  std::string many = "?kinds=";
  for (int i = 0; i < 40; ++i) many += "k" + std::to_string(i) + ",";
  EXPECT_EQ(c.Do("GET", "/v1/events" + many)->status, 400);
}

// A client that goes away is noticed at once: the stream's handler and a parked blocking read
// are cancelled (today's requests in flight drop to zero long before their waits end).
TEST_P(Events, AClientThatGoesAwayEndsItsStreamAndItsParkedRead) {
  int stream = OpenStream("?heartbeat=5m", server_->admin_key());
  std::string got;
  ASSERT_TRUE(ReadUntil(stream, &got, "retry: "));
  // An index far ahead: the read stays parked whatever else the server writes meanwhile (a
  // write passing the variable's own index would release it early, as blocking reads may).
  int64_t index = PutVariable("cc-parked") + 1000000;
  int parked = ConnectTo(PortOf(*server_));
  ASSERT_TRUE(WriteAll(parked, "GET /v1/variables/cc-parked?index=" + std::to_string(index) +
                                   "&wait=10m HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                   server_->admin_key() + "\r\n\r\n"));
  auto in_flight = [](int n) {
    return [n](const std::string& m) {
      return m.find("drover_http_requests_in_flight " + std::to_string(n) + "\n") !=
             std::string::npos;
    };
  };
  // Both are held (the /metrics request itself is the third).
  ASSERT_TRUE(WaitForMetrics(in_flight(3)));
  close(stream);
  close(parked);
  EXPECT_TRUE(WaitForMetrics(in_flight(1))) << "both ended well before their waits";
  auto c = server_->NewClient();
  auto m = c.Do("GET", "/metrics");
  EXPECT_NE(m->body.find("status=\"499\""), std::string::npos) << "logged as 499";
}

}  // namespace
}  // namespace drover
