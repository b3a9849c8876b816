// Queues and topics over HTTP on real servers: long polls, bad input of every shape, many
// consumers, and kill -9 under send, receive and ack load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <thread>
#include <tuple>

#include "testing/queue_load.h"
#include "testing/raw_http.h"
#include "testing/store_fixture.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::QueueLog;
using testing::TestServer;

class Queues : public testing::BackendTest {};
DROVER_ON_ALL_BACKENDS(Queues);

boost::json::value Json(const client::Response& r) { return boost::json::parse(r.body); }

TEST_P(Queues, ALongPollIsWokenByASendAndEndsEmptyWhenItsWaitEnds) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs", "{}")->status, 201);
  // Empty after its wait.
  auto empty = c.Do("POST", "/v1/queues/jobs/receive", R"({"wait":"1s"})");
  ASSERT_EQ(empty->status, 200) << empty->body;
  EXPECT_TRUE(Json(*empty).at("messages").as_array().empty());
  // A send through another connection wakes the waiting receiver long before its 20 s end.
  auto start = std::chrono::steady_clock::now();
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto other = s.NewClient();
    (void)other.Do("POST", "/v1/queues/jobs/messages", R"({"body":"wake"})");
  });
  auto got = c.Do("POST", "/v1/queues/jobs/receive", R"({"wait":"20s","max":10})");
  sender.join();
  ASSERT_EQ(got->status, 200) << got->body;
  auto msgs = Json(*got).at("messages").as_array();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].at("body").as_string(), "wake");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  // A delayed message wakes a waiting receiver when its delay ends, with no send to wake it.
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs/messages", R"({"body":"later","delay":"1s"})")->status,
            201);
  auto later = c.Do("POST", "/v1/queues/jobs/receive", R"({"wait":"20s"})");
  ASSERT_EQ(later->status, 200);
  ASSERT_EQ(Json(*later).at("messages").as_array().size(), 1u);
}

// A receiver that hangs up while it waits takes nothing: the next message goes to a receiver
// that is still there, at once (not after a dead connection's visibility timeout).
TEST_P(Queues, AReceiverThatHangsUpTakesNothing) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs", R"({"visibility_timeout": "5m"})")->status, 201);
  int port = testing::PortOf(s);
  std::string body = R"({"wait": "20s", "max": 10})";
  for (int i = 0; i < 3; ++i) {  // three waiting receivers hang up
    int fd = testing::ConnectTo(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(testing::WriteAll(
        fd, "POST /v1/queues/jobs/receive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                s.admin_key() + "\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // parked by now, or soon
    close(fd);
  }
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs/messages", R"({"body": "for the living"})")->status, 201);
  std::string got;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = c.Do("POST", "/v1/queues/jobs/receive", R"({"wait": "2s"})");
        if (!r.ok() || r->status != 200) return false;
        auto msgs = Json(*r).at("messages").as_array();
        if (msgs.empty()) return false;
        got = std::string(msgs[0].at("body").as_string());
        return true;
      },
      10000))
      << "a receiver that left holds the message";
  EXPECT_EQ(got, "for the living");
}

TEST_P(Queues, BadInputGetsAProblemNamingTheField) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/small", R"({"max_message_size": 10})")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/queues/a", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/queues/b", R"({"dead_letter_queue": "a"})")->status, 201);
  struct Case {
    const char* method;
    std::string path;
    std::string body;
    int status;
    const char* field;  // "" when the problem has no field errors
  };
  std::string big(300 * 1024, 'x');
  const Case cases[] = {
      {"PUT", "/v1/queues/Bad_Name", "{}", 400, ""},
      {"PUT", "/v1/queues/q", R"({"visibility_timeout": "13h"})", 422, "visibility_timeout"},
      {"PUT", "/v1/queues/q", R"({"visibility_timeout": -1})", 422, "visibility_timeout"},
      {"PUT", "/v1/queues/q", R"({"retention": "1s"})", 422, "retention"},
      {"PUT", "/v1/queues/q", R"({"max_receives": -2})", 422, "max_receives"},
      {"PUT", "/v1/queues/q", R"({"max_message_size": 0})", 422, "max_message_size"},
      {"PUT", "/v1/queues/q", R"({"dead_letter_queue": "nope"})", 422, "dead_letter_queue"},
      {"PUT", "/v1/queues/q", R"({"dead_letter_queue": "q"})", 422, "dead_letter_queue"},
      {"PUT", "/v1/queues/a", R"({"dead_letter_queue": "b"})", 422, "dead_letter_queue"},
      {"PUT", "/v1/queues/q", R"({"fifo": "yes"})", 422, "fifo"},
      {"PUT", "/v1/queues/q", R"({"colour": "red"})", 422, "colour"},
      {"PUT", "/v1/queues/q", "[1]", 400, ""},
      {"PUT", "/v1/queues/q", "{", 400, ""},
      {"POST", "/v1/queues/a/messages", R"({"body": 5})", 422, "body"},
      {"POST", "/v1/queues/a/messages", R"({})", 422, "body"},
      {"POST", "/v1/queues/a/messages", R"({"body": "x", "group": "g"})", 422, "group"},
      {"POST", "/v1/queues/a/messages", R"({"body": "x", "attributes": {"a": 1}})", 422,
       "attributes"},
      {"POST", "/v1/queues/a/messages", R"({"body": "x", "dedup_id": "a b"})", 422, "dedup_id"},
      {"POST", "/v1/queues/a/messages", R"({"body": "x", "delay": "8d"})", 422, "delay"},
      {"POST", "/v1/queues/a/messages", R"({"body": "x\u0000"})", 400, "body"},
      {"POST", "/v1/queues/a/messages", R"({"messages": []})", 422, "messages"},
      {"POST", "/v1/queues/a/messages", R"({"messages": [{"body": "x"}, {"body": 1}]})", 422,
       "messages[1].body"},
      {"POST", "/v1/queues/small/messages", R"({"body": "more than ten bytes"})", 413, ""},
      {"POST", "/v1/queues/a/messages", "{\"body\":\"" + big + "\"}", 413, ""},
      {"POST", "/v1/queues/nope/messages", R"({"body": "x"})", 404, ""},
      {"POST", "/v1/queues/a/receive", R"({"max": 11})", 422, "max"},
      {"POST", "/v1/queues/a/receive", R"({"wait": "21s"})", 422, "wait"},
      {"POST", "/v1/queues/nope/receive", "{}", 404, ""},
      {"POST", "/v1/queues/a/ack", R"({"receipts": ["nonsense"]})", 422, "receipt"},
      {"POST", "/v1/queues/a/ack", R"({"receipts": []})", 422, "receipts"},
      {"DELETE", "/v1/queues/a/messages/AAAAAAAAAAEQbu_03j7vig", "", 409, ""},
      {"POST", "/v1/queues/a/messages/AAAAAAAAAAEQbu_03j7vig/visibility", R"({"timeout":"1s"})",
       409, ""},
      {"POST", "/v1/queues/a/messages/AAAAAAAAAAEQbu_03j7vig/visibility", "{}", 422, "timeout"},
      {"POST", "/v1/queues/a/redrive", R"({"max": 0})", 422, "max"},
      {"DELETE", "/v1/queues/a", "", 409, ""},  // b's dead-letter queue
      {"PUT", "/v1/topics/t/subscriptions/a", R"({"filter": {"x": {"suffix": "y"}}})", 422,
       "filter.x"},
      {"PUT", "/v1/topics/nope/subscriptions/a", "{}", 404, ""},
      {"POST", "/v1/topics/nope/messages", R"({"body": "x"})", 404, ""},
  };
  ASSERT_EQ(c.Do("PUT", "/v1/topics/t", "")->status, 201);
  for (const auto& k : cases) {
    auto r = c.Do(k.method, k.path, k.body);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, k.status)
        << k.method << " " << k.path << " " << k.body.substr(0, 80) << " -> " << r->body;
    EXPECT_EQ(r->Header("Content-Type"), "application/problem+json") << k.path;
    if (*k.field) {
      auto v = boost::json::parse(r->body);
      bool named = false;
      if (auto* errs = v.as_object().if_contains("errors")) {
        for (const auto& e : errs->as_array()) named |= e.at("field").as_string() == k.field;
      }
      EXPECT_TRUE(named) << k.path << " " << k.body << " should name " << k.field << ": "
                         << r->body;
    }
  }
  // Nothing of it was stored.
  auto a = c.Do("GET", "/v1/queues/a");
  EXPECT_EQ(Json(*a).at("stats").at("visible").as_int64(), 0);
  EXPECT_EQ(c.Do("GET", "/v1/queues/q")->status, 404);
}

TEST_P(Queues, EightConsumersAckEveryMessageOnceAndNeverHoldOneTogether) {
  TestServer s(DbArgs({"--access-log", "false"}));
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/work", R"({"visibility_timeout": "60s"})")->status, 201);
  QueueLog log;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < 4; ++p) {
    threads.emplace_back([&, p] {
      auto pc = s.NewClient();
      testing::SendNumbered(pc, "work", "p" + std::to_string(p), 500, log, stop);
    });
  }
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&] {
      auto cc = s.NewClient();
      testing::ConsumeAndAck(cc, "work", log, stop, "1s", /*idle_polls=*/3);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(log.sent.size(), 2000u);
  EXPECT_EQ(log.acked, log.sent) << "every message acked";
  for (const auto& [body, n] : log.received) EXPECT_EQ(n, 1) << body << " delivered again";
  EXPECT_TRUE(log.held_twice.empty()) << log.held_twice.size() << " held by two at once";
}

// kill -9 while messages are sent, received and acked: after a restart, every send answered 201
// is delivered (or was acked before), and no message whose ack was answered 2xx comes back.
TEST_P(Queues, Kill9LosesNoAcknowledgedSendAndResurrectsNoAcknowledgedAck) {
  testing::TempDir dir;
  QueueLog log;
  {
    TestServer s(DbArgs({"--access-log", "false"}), dir.path());
    ASSERT_TRUE(s.Start());
    auto c = s.NewClient();
    ASSERT_EQ(c.Do("PUT", "/v1/queues/work", R"({"visibility_timeout": "1s"})")->status, 201);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int p = 0; p < 4; ++p) {
      threads.emplace_back([&, p] {
        auto pc = s.NewClient();
        testing::SendNumbered(pc, "work", "p" + std::to_string(p), 100000, log, stop);
      });
    }
    for (int k = 0; k < 4; ++k) {
      threads.emplace_back([&] {
        auto cc = s.NewClient();
        testing::ConsumeAndAck(cc, "work", log, stop, "1s");
      });
    }
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          std::lock_guard lock(log.mu);
          return log.sent.size() >= 500 && log.acked.size() >= 300;
        },
        60000));
    s.Kill();
    stop = true;
    for (auto& t : threads) t.join();
  }
  std::set<std::string> acked_before = log.acked;
  TestServer again(DbArgs({"--access-log", "false"}), dir.path());
  ASSERT_TRUE(again.Start());
  QueueLog after;
  std::atomic<bool> stop{false};
  auto c = again.NewClient();
  // In-flight messages of the killed server come back after their 1 s visibility.
  testing::ConsumeAndAck(c, "work", after, stop, "2s", /*idle_polls=*/2);
  size_t lost = 0, resurrected = 0;
  for (const auto& body : log.sent) {
    // An ack sent as the server died may or may not have committed: either is right.
    lost += !acked_before.contains(body) && !log.ack_unknown.contains(body) &&
            !after.received.contains(body);
  }
  for (const auto& [body, n] : after.received) resurrected += acked_before.contains(body);
  EXPECT_EQ(lost, 0u) << "of " << log.sent.size() << " sends answered 201";
  EXPECT_EQ(resurrected, 0u) << "of " << acked_before.size() << " acks answered 2xx";
}

// Queues, messages and receipts belong to their tenant: another tenant's key sees none of it,
// and a receipt carried to another tenant acks nothing; viewers read but cannot receive.
TEST_P(Queues, TenantsNeverSeeEachOthersQueuesOrMessages) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto admin = s.NewClient();
  auto key = [&](const char* body) {
    auto r = admin.Do("POST", "/v1/keys", body);
    EXPECT_EQ(r->status, 201) << r->body;
    return s.NewClient(std::string(Json(*r).at("key").as_string()));
  };
  auto a = key(R"({"name":"alice","role":"user","tenant":"team-a"})");
  auto b = key(R"({"name":"bob","role":"user","tenant":"team-b"})");
  auto viewer = key(R"({"name":"val","role":"viewer","tenant":"team-a"})");
  ASSERT_EQ(a.Do("PUT", "/v1/queues/jobs", "{}")->status, 201);
  ASSERT_EQ(a.Do("POST", "/v1/queues/jobs/messages", R"({"body": "a's secret"})")->status, 201);
  for (auto [method, path, body] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"GET", "/v1/queues/jobs", ""},
           {"GET", "/v1/queues/jobs/messages", ""},
           {"GET", "/v1/queues/jobs/history", ""},
           {"POST", "/v1/queues/jobs/messages", R"({"body": "x"})"},
           {"POST", "/v1/queues/jobs/receive", "{}"},
           {"POST", "/v1/queues/jobs/purge", ""},
           {"DELETE", "/v1/queues/jobs", ""},
           {"GET", "/v1/queues/jobs?tenant=team-a", ""},
       }) {
    auto r = b.Do(method, path, body);
    EXPECT_EQ(r->status, 404) << method << " " << path << ": " << r->body;
  }
  auto listed = b.Do("GET", "/v1/queues");
  EXPECT_TRUE(Json(*listed).at("items").as_array().empty());
  // B's own queue of the same name is another queue.
  ASSERT_EQ(b.Do("PUT", "/v1/queues/jobs", "{}")->status, 201);
  auto got = a.Do("POST", "/v1/queues/jobs/receive", R"({"visibility_timeout": "5m"})");
  auto msgs = Json(*got).at("messages").as_array();
  ASSERT_EQ(msgs.size(), 1u);
  std::string receipt(msgs[0].at("receipt").as_string());
  auto stolen = b.Do("POST", "/v1/queues/jobs/ack",
                     boost::json::serialize(boost::json::object{{"receipts", {receipt}}}));
  ASSERT_EQ(stolen->status, 200);
  EXPECT_EQ(Json(*stolen).at("acked").as_int64(), 0) << "a receipt acks only in its tenant";
  EXPECT_EQ(b.Do("DELETE", "/v1/queues/jobs/messages/" + receipt)->status, 409);
  EXPECT_TRUE(
      Json(*b.Do("POST", "/v1/queues/jobs/receive", "{}")).at("messages").as_array().empty());
  // A viewer reads the queue, and cannot receive (a receive changes the queue).
  EXPECT_EQ(viewer.Do("GET", "/v1/queues/jobs")->status, 200);
  EXPECT_EQ(viewer.Do("POST", "/v1/queues/jobs/receive", "{}")->status, 403);
  EXPECT_EQ(a.Do("DELETE", "/v1/queues/jobs/messages/" + receipt)->status, 204);
}

// A peek lists messages in the order sent, pages with next_cursor, and changes nothing: the
// messages stay where they were, with the same receive counts; viewers may look.
TEST_P(Queues, APeekShowsMessagesAndChangesNothing) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs-dlq", "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/queues/jobs", R"({"dead_letter_queue":"jobs-dlq","max_receives":1})")
                ->status,
            201);
  for (int i = 0; i < 3; ++i) {
    auto body = boost::json::serialize(boost::json::object{
        {"body", "job " + std::to_string(i)}, {"attributes", {{"n", std::to_string(i)}}}});
    ASSERT_EQ(c.Do("POST", "/v1/queues/jobs/messages", body)->status, 201);
  }
  ASSERT_EQ(
      c.Do("POST", "/v1/queues/jobs/receive", R"({"max":10,"visibility_timeout":"0s"})")->status,
      200);
  ASSERT_EQ(c.Do("POST", "/v1/queues/jobs/receive", R"({"max":10})")->status, 200);
  auto first = c.Do("GET", "/v1/queues/jobs-dlq/messages?limit=2");
  ASSERT_EQ(first->status, 200) << first->body;
  auto v = Json(*first);
  auto items = v.at("items").as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].at("body").as_string(), "job 0");
  EXPECT_EQ(items[0].at("attributes").at("n").as_string(), "0");
  EXPECT_EQ(items[0].at("source").as_string(), "jobs");
  EXPECT_EQ(items[0].at("state").as_string(), "visible");
  auto rest = c.Do("GET", "/v1/queues/jobs-dlq/messages?limit=2&cursor=" +
                              std::string(v.at("next_cursor").as_string()));
  auto last = Json(*rest);
  ASSERT_EQ(last.at("items").as_array().size(), 1u);
  EXPECT_EQ(last.at("items").as_array()[0].at("body").as_string(), "job 2");
  EXPECT_TRUE(last.at("next_cursor").is_null());
  // Looked at twice, changed by neither look.
  auto again = Json(*c.Do("GET", "/v1/queues/jobs-dlq/messages"));
  EXPECT_EQ(again.at("items").as_array()[0].at("receive_count"), items[0].at("receive_count"));
  auto stats = Json(*c.Do("GET", "/v1/queues/jobs-dlq")).at("stats");
  EXPECT_EQ(stats.at("visible").as_int64(), 3);
  EXPECT_EQ(stats.at("in_flight").as_int64(), 0);
  auto viewer_key = c.Do("POST", "/v1/keys", R"({"name":"val","role":"viewer"})");
  auto viewer = s.NewClient(std::string(Json(*viewer_key).at("key").as_string()));
  EXPECT_EQ(viewer.Do("GET", "/v1/queues/jobs-dlq/messages")->status, 200);
  EXPECT_EQ(c.Do("GET", "/v1/queues/jobs-dlq/messages?cursor=x")->status, 400);
  EXPECT_EQ(c.Do("GET", "/v1/queues/jobs-dlq/messages?limit=101")->status, 400);
  EXPECT_EQ(c.Do("GET", "/v1/queues/nope/messages")->status, 404);
  // The queue's figures over time (recorded every minute by the cleanup): a list, maybe empty.
  auto history = c.Do("GET", "/v1/queues/jobs/history?range=2h");
  ASSERT_EQ(history->status, 200) << history->body;
  EXPECT_TRUE(Json(*history).at("items").is_array());
  EXPECT_EQ(viewer.Do("GET", "/v1/queues/jobs/history")->status, 200);
  EXPECT_EQ(c.Do("GET", "/v1/queues/jobs/history?range=25h")->status, 400);
  EXPECT_EQ(c.Do("GET", "/v1/queues/jobs/history?range=soon")->status, 400);
  EXPECT_EQ(c.Do("GET", "/v1/queues/nope/history")->status, 404);
}

TEST_P(Queues, TopicsFanOutOverHttp) {
  TestServer s(DbArgs());
  ASSERT_TRUE(s.Start());
  auto c = s.NewClient();
  for (const char* q : {"all", "eu"})
    ASSERT_EQ(c.Do("PUT", std::string("/v1/queues/") + q, "{}")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/topics/orders", "")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/topics/orders/subscriptions/all", "")->status, 201);
  ASSERT_EQ(c.Do("PUT", "/v1/topics/orders/subscriptions/eu",
                 R"({"filter": {"region": ["eu-west", "eu-north"]}})")
                ->status,
            201);
  auto pub = c.Do("POST", "/v1/topics/orders/messages",
                  R"({"messages": [{"body": "1", "attributes": {"region": "eu-west"}},
                                   {"body": "2", "attributes": {"region": "us"}}]})");
  ASSERT_EQ(pub->status, 201) << pub->body;
  auto v = Json(*pub).at("messages").as_array();
  EXPECT_EQ(v[0].at("deliveries").as_array().size(), 2u);
  EXPECT_EQ(v[1].at("deliveries").as_array().size(), 1u);
  auto all = c.Do("POST", "/v1/queues/all/receive", R"({"max": 10})");
  EXPECT_EQ(Json(*all).at("messages").as_array().size(), 2u);
  auto eu = c.Do("POST", "/v1/queues/eu/receive", R"({"max": 10})");
  ASSERT_EQ(Json(*eu).at("messages").as_array().size(), 1u);
  EXPECT_EQ(Json(*eu).at("messages").as_array()[0].at("body").as_string(), "1");
  auto topic = c.Do("GET", "/v1/topics/orders");
  EXPECT_EQ(Json(*topic).at("subscriptions").as_array().size(), 2u);
}

}  // namespace
}  // namespace drover
