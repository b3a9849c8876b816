#include "queues/queues.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "queues/filter.h"
#include "queues/topics.h"
#include "testing/store_fixture.h"
#include "testing/sync_call.h"

namespace drover::queues {
namespace {

// Runs an asynchronous service call and waits for its answer.
using testing::Sync;

class QueuesTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "q.db"));
    ASSERT_TRUE(store_);
    queues_ = std::make_unique<QueueService>(*store_, SystemClock::Get());
    topics_ = std::make_unique<TopicService>(*store_, *queues_);
  }
  void TearDown() override {
    topics_.reset();
    queues_.reset();
  }

  Status Put(const std::string& name, const char* spec = "{}") {
    auto s = ParseQueueDocument(boost::json::parse(spec), name);
    if (!s.ok()) return s.status();
    return Sync<Result<std::pair<Queue, Written>>>(
               [&](auto done) { queues_->Put("t", name, *s, done); })
        .status();
  }
  Result<std::vector<SendResult>> Send(const std::string& q, std::vector<OutgoingMessage> ms) {
    return Sync<Result<std::vector<SendResult>>>(
        [&](auto done) { queues_->Send("t", q, std::move(ms), done); });
  }
  Result<SendResult> SendOne(const std::string& q, std::string body, std::string group = "",
                             std::map<std::string, std::string> attrs = {}) {
    OutgoingMessage m;
    m.body = std::move(body);
    m.group = std::move(group);
    m.attributes = std::move(attrs);
    auto r = Send(q, {m});
    if (!r.ok()) return r.status();
    return (*r)[0];
  }
  std::vector<Message> Receive(const std::string& q, int max = 10,
                               std::optional<int64_t> visibility_ms = std::nullopt) {
    ReceiveOptions o;
    o.max = max;
    o.visibility_ms = visibility_ms;
    auto r = Sync<Result<ReceiveResult>>([&](auto done) { queues_->Receive("t", q, o, done); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->messages : std::vector<Message>{};
  }
  Result<AckResult> Ack(const std::string& q, std::vector<std::string> receipts) {
    return Sync<Result<AckResult>>(
        [&](auto done) { queues_->Ack("t", q, std::move(receipts), done); });
  }
  Status Exec(const std::string& sql) {
    return store::WriteSync(*store_, [&](store::Tx& tx) { return tx.Exec(sql).status(); });
  }
  std::vector<std::string> Bodies(const std::vector<Message>& ms) {
    std::vector<std::string> out;
    for (const auto& m : ms) out.push_back(m.body);
    return out;
  }
  QueueStats Stats(const std::string& q) {
    auto s = queues_->Stats("t", q);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : QueueStats{};
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<QueueService> queues_;
  std::unique_ptr<TopicService> topics_;
};
DROVER_ON_ALL_BACKENDS(QueuesTest);

TEST_P(QueuesTest, SendReceiveAckAndTheReceiptIsSingleUse) {
  ASSERT_TRUE(Put("jobs").ok());
  auto sent = SendOne("jobs", "hello", "", {{"kind", "greeting"}});
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  auto got = Receive("jobs");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, sent->id);
  EXPECT_EQ(got[0].body, "hello");
  EXPECT_EQ(got[0].attributes.at("kind"), "greeting");
  EXPECT_EQ(got[0].receive_count, 1);
  EXPECT_TRUE(Receive("jobs").empty()) << "in flight: nobody else gets it";
  EXPECT_EQ(Stats("jobs").in_flight, 1);
  auto acked = Ack("jobs", {got[0].receipt});
  ASSERT_TRUE(acked.ok());
  EXPECT_EQ(acked->acked, 1);
  auto again = Ack("jobs", {got[0].receipt});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->acked, 0);
  EXPECT_EQ(again->stale, std::vector<std::string>{got[0].receipt});
  ASSERT_TRUE(queues_->FlushCounters().ok());
  QueueStats st = Stats("jobs");
  EXPECT_EQ(st.visible + st.in_flight + st.delayed, 0);
  EXPECT_EQ(st.sent, 1);
  EXPECT_EQ(st.received, 1);
  EXPECT_EQ(st.acked, 1);
}

TEST_P(QueuesTest, AnUnackedMessageReappearsAfterItsVisibilityAndNotBefore) {
  ASSERT_TRUE(Put("jobs").ok());
  ASSERT_TRUE(SendOne("jobs", "m").ok());
  auto start = std::chrono::steady_clock::now();
  auto first = Receive("jobs", 1, /*visibility_ms=*/1500);
  ASSERT_EQ(first.size(), 1u);
  std::vector<Message> second;
  ASSERT_TRUE(testing::WaitFor([&] {
    second = Receive("jobs", 1, 60'000);
    return !second.empty();
  }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_EQ(second[0].receive_count, 2);
  // The first receipt went stale when it was received again.
  auto stale = Ack("jobs", {first[0].receipt});
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->acked, 0);
  EXPECT_EQ(Ack("jobs", {second[0].receipt})->acked, 1);
}

TEST_P(QueuesTest, VisibilityCanBeReleasedOrExtended) {
  ASSERT_TRUE(Put("jobs").ok());
  ASSERT_TRUE(SendOne("jobs", "m").ok());
  auto got = Receive("jobs", 1, 60'000);
  ASSERT_EQ(got.size(), 1u);
  // Released at once: receivable again.
  ASSERT_TRUE(Sync<Status>([&](auto done) {
                queues_->ChangeVisibility("t", "jobs", got[0].receipt, 0, done);
              }).ok());
  auto again = Receive("jobs", 1, 1000);
  ASSERT_EQ(again.size(), 1u);
  // Extended before it ends: still held well past the first second.
  ASSERT_TRUE(Sync<Status>([&](auto done) {
                queues_->ChangeVisibility("t", "jobs", again[0].receipt, 60'000, done);
              }).ok());
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(2500)) {
    ASSERT_TRUE(Receive("jobs").empty()) << "extended: not visible";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The old receipt is stale for a change of visibility too.
  Status stale = Sync<Status>(
      [&](auto done) { queues_->ChangeVisibility("t", "jobs", got[0].receipt, 0, done); });
  EXPECT_TRUE(stale.IsConflict()) << stale.ToString();
}

TEST_P(QueuesTest, MovesToTheDeadLetterQueueAfterExactlyMaxReceivesAndRedrivesBack) {
  ASSERT_TRUE(Put("dlq").ok());
  ASSERT_TRUE(Put("jobs", R"({"max_receives": 2, "dead_letter_queue": "dlq"})").ok());
  ASSERT_TRUE(SendOne("jobs", "poison", "", {{"a", "1"}}).ok());
  for (int i = 1; i <= 2; ++i) {
    auto got = Receive("jobs", 1, 0);  // visible again at once
    ASSERT_EQ(got.size(), 1u) << "receive " << i;
    EXPECT_EQ(got[0].receive_count, i);
  }
  EXPECT_TRUE(Receive("jobs", 1, 0).empty()) << "the third receive moves it instead";
  EXPECT_EQ(Stats("jobs").dlq_depth.value_or(-1), 1);
  auto dead = Receive("dlq", 1);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, "poison");
  EXPECT_EQ(dead[0].attributes.at("a"), "1");
  ASSERT_TRUE(Sync<Status>([&](auto done) {
                queues_->ChangeVisibility("t", "dlq", dead[0].receipt, 0, done);
              }).ok());
  auto moved = Sync<Result<int64_t>>([&](auto done) { queues_->Redrive("t", "dlq", 0, done); });
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 1);
  auto back = Receive("jobs");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].body, "poison");
  EXPECT_EQ(back[0].attributes.at("a"), "1");
  EXPECT_EQ(back[0].receive_count, 1) << "a fresh start";
}

// A dead-lettered message keeps the dead-letter queue's retention, not its source's; a redrive
// of N moves the oldest N and leaves the rest.
TEST_P(QueuesTest, DeadLettersKeepTheirOwnRetentionAndRedriveMovesN) {
  ASSERT_TRUE(Put("dlq", R"({"retention": "1h"})").ok());
  ASSERT_TRUE(Put("jobs", R"({"max_receives": 1, "dead_letter_queue": "dlq"})").ok());
  for (const char* b : {"a", "b", "c"}) ASSERT_TRUE(SendOne("jobs", b).ok());
  EXPECT_EQ(Receive("jobs", 10, 0).size(), 3u);  // each received once, visible again at once
  EXPECT_TRUE(Receive("jobs", 10, 0).empty()) << "the next receive moves all three";
  int64_t kept = -1;
  ASSERT_TRUE(store_
                  ->Read([&](store::Tx& tx) -> Status {
                    auto v = tx.QueryInt(
                        "SELECT MAX(expires_at - sent_at) FROM messages WHERE queue = 'dlq'");
                    if (!v.ok()) return v.status();
                    kept = *v;
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(kept, 3'600'000) << "the dead-letter queue's own retention";
  auto moved = Sync<Result<int64_t>>([&](auto done) { queues_->Redrive("t", "dlq", 2, done); });
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, 2);
  EXPECT_EQ(Bodies(Receive("jobs", 10)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Bodies(Receive("dlq", 10)), (std::vector<std::string>{"c"}));
}

TEST_P(QueuesTest, DeduplicatesWithinTheWindowAndNotAfter) {
  ASSERT_TRUE(Put("jobs").ok());
  OutgoingMessage m;
  m.body = "once";
  m.dedup_id = "order-17";
  auto a = Send("jobs", {m});
  auto b = Send("jobs", {m});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE((*a)[0].duplicate);
  EXPECT_TRUE((*b)[0].duplicate);
  EXPECT_EQ((*b)[0].id, (*a)[0].id);
  EXPECT_EQ(Receive("jobs").size(), 1u);
  ASSERT_TRUE(Exec("UPDATE queue_dedup SET expires_at = 0").ok());  // the window passed
  auto c = Send("jobs", {m});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)[0].duplicate);
  EXPECT_NE((*c)[0].id, (*a)[0].id);
}

TEST_P(QueuesTest, ADelayedMessageWaitsItsDelay) {
  ASSERT_TRUE(Put("jobs").ok());
  OutgoingMessage m;
  m.body = "later";
  m.delay_ms = 1200;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Send("jobs", {m}).ok());
  EXPECT_EQ(Stats("jobs").delayed, 1);
  std::vector<Message> got;
  ASSERT_TRUE(testing::WaitFor([&] {
    got = Receive("jobs");
    return !got.empty();
  }));
  // Visibility is stored in whole wall-clock milliseconds, so allow for their rounding and for
  // the wall and steady clocks drifting apart by a little.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1150));
}

TEST_P(QueuesTest, ABatchIsAllOrNothingAndNamesTheBadEntry) {
  ASSERT_TRUE(Put("jobs", R"({"max_message_size": 100})").ok());
  std::vector<OutgoingMessage> batch(3);
  batch[0].body = "ok";
  batch[1].body = std::string(200, 'x');  // over the queue's size
  batch[2].body = "ok too";
  auto r = Send("jobs", batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kTooLarge) << r.status().ToString();
  EXPECT_NE(r.status().message().find("messages[1]"), std::string::npos) << r.status().message();
  EXPECT_TRUE(Receive("jobs").empty()) << "nothing of the batch was stored";
  batch[1].body = "fine";
  batch[1].group = "g";  // a group on a standard queue
  r = Send("jobs", batch);
  ASSERT_FALSE(r.ok());
  ASSERT_FALSE(r.status().errors().empty());
  EXPECT_EQ(r.status().errors()[0].field, "messages[1].group");
  EXPECT_TRUE(Receive("jobs").empty());
  batch[1].group.clear();
  r = Send("jobs", batch);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Receive("jobs").size(), 3u);
}

TEST_P(QueuesTest, FifoDeliversEachGroupInOrderOneInFlightAtATime) {
  ASSERT_TRUE(Put("orders", R"({"fifo": true})").ok());
  for (const char* b : {"a1", "a2", "a3"}) ASSERT_TRUE(SendOne("orders", b, "a").ok());
  for (const char* b : {"b1", "b2"}) ASSERT_TRUE(SendOne("orders", b, "b").ok());
  EXPECT_FALSE(SendOne("orders", "no group").ok()) << "a FIFO message needs a group";
  auto first = Receive("orders");
  EXPECT_EQ(Bodies(first), (std::vector<std::string>{"a1", "b1"}));
  EXPECT_TRUE(Receive("orders").empty()) << "one in flight per group";
  ASSERT_EQ(Ack("orders", {first[0].receipt})->acked, 1);
  auto next = Receive("orders");
  EXPECT_EQ(Bodies(next), (std::vector<std::string>{"a2"}));
  // A head whose visibility ends is the head again: order holds.
  ASSERT_TRUE(Sync<Status>([&](auto done) {
                queues_->ChangeVisibility("t", "orders", next[0].receipt, 0, done);
              }).ok());
  auto retry = Receive("orders");
  EXPECT_EQ(Bodies(retry), (std::vector<std::string>{"a2"}));
  ASSERT_EQ(Ack("orders", {retry[0].receipt, first[1].receipt})->acked, 2);
  EXPECT_EQ(Bodies(Receive("orders")), (std::vector<std::string>{"a3", "b2"}));
}

// 8 consumers on a FIFO queue of 6 groups: each group's messages arrive in send order, and a
// group never has two messages in flight at once, while the groups are worked in parallel.
TEST_P(QueuesTest, FifoHoldsUnderEightConcurrentConsumers) {
  ASSERT_TRUE(Put("orders", R"({"fifo": true, "visibility_timeout": "5m"})").ok());
  constexpr int kGroups = 6, kPerGroup = 40;
  std::vector<OutgoingMessage> batch;
  for (int i = 0; i < kPerGroup; ++i) {
    for (int g = 0; g < kGroups; ++g) {
      OutgoingMessage m;
      m.group = "g" + std::to_string(g);
      m.body = std::to_string(i);
      batch.push_back(std::move(m));
      if (batch.size() == 100) {
        ASSERT_TRUE(Send("orders", std::exchange(batch, {})).ok());
      }
    }
  }
  if (!batch.empty()) {
    ASSERT_TRUE(Send("orders", batch).ok());
  }
  std::mutex mu;
  std::map<std::string, int> next, in_flight;
  int max_in_flight_per_group = 0, out_of_order = 0, done = 0;
  std::set<std::string> groups_at_once;
  size_t most_groups_at_once = 0;
  std::vector<std::thread> consumers;
  for (int k = 0; k < 8; ++k) {
    consumers.emplace_back([&] {
      int idle = 0;
      while (idle < 20) {
        auto got = Receive("orders", 10);
        if (got.empty()) {
          ++idle;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        idle = 0;
        std::vector<std::string> receipts;
        {
          std::lock_guard lock(mu);
          for (const auto& m : got) {
            max_in_flight_per_group = std::max(max_in_flight_per_group, ++in_flight[m.group]);
            out_of_order += std::stoi(m.body) != next[m.group]++;
            groups_at_once.insert(m.group);
            most_groups_at_once = std::max(most_groups_at_once, groups_at_once.size());
            receipts.push_back(m.receipt);
          }
          done += static_cast<int>(got.size());
        }
        // Held a moment, as work would: a second message of a held group handed to another
        // consumer meanwhile shows as two in flight.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        {
          std::lock_guard lock(mu);
          for (const auto& m : got) {
            if (--in_flight[m.group] == 0) groups_at_once.erase(m.group);
          }
        }
        auto acked = Ack("orders", receipts);
        ASSERT_TRUE(acked.ok());
        ASSERT_EQ(acked->acked, static_cast<int>(receipts.size()));
      }
    });
  }
  for (auto& c : consumers) c.join();
  EXPECT_EQ(done, kGroups * kPerGroup);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(max_in_flight_per_group, 1);
  EXPECT_GT(most_groups_at_once, 1u) << "groups are delivered in parallel";
}

TEST_P(QueuesTest, ExpiredMessagesAreCleanedAndTheirGroupMovesOn) {
  ASSERT_TRUE(Put("orders", R"({"fifo": true})").ok());
  ASSERT_TRUE(Put("plain").ok());
  auto a1 = SendOne("orders", "a1", "a");
  ASSERT_TRUE(a1.ok());
  ASSERT_TRUE(SendOne("orders", "a2", "a").ok());
  ASSERT_TRUE(SendOne("plain", "p").ok());
  ASSERT_TRUE(Exec("UPDATE messages SET expires_at = 0 WHERE body IN ('a1', 'p')").ok());
  ASSERT_TRUE(queues_->Cleanup().ok());
  EXPECT_TRUE(Receive("plain").empty());
  EXPECT_EQ(Bodies(Receive("orders")), (std::vector<std::string>{"a2"}));
}

TEST_P(QueuesTest, BadDeadLetterQueuesAreRefused) {
  EXPECT_TRUE(Put("a", R"({"dead_letter_queue": "nope"})").IsValidation());
  EXPECT_TRUE(Put("a", R"({"dead_letter_queue": "a"})").IsValidation());
  ASSERT_TRUE(Put("b").ok());
  ASSERT_TRUE(Put("a", R"({"dead_letter_queue": "b"})").ok());
  Status cycle = Put("b", R"({"dead_letter_queue": "a"})");
  EXPECT_TRUE(cycle.IsValidation()) << cycle.ToString();
  ASSERT_TRUE(Put("f", R"({"fifo": true})").ok());
  EXPECT_TRUE(Put("c", R"({"dead_letter_queue": "f"})").IsValidation()) << "kinds differ";
  Status in_use = Sync<Status>([&](auto done) { queues_->Delete("t", "b", done); });
  EXPECT_TRUE(in_use.IsConflict()) << in_use.ToString();
  EXPECT_TRUE(Put("a", R"({"fifo": true})").IsValidation()) << "a queue's kind stays";
}

TEST_P(QueuesTest, TopicsFanOutToMatchingSubscriptionsInOneTransaction) {
  for (const char* q : {"all", "eu", "gold", "fifo-q"}) ASSERT_TRUE(Put(q).ok());
  auto topic = Sync<Result<std::pair<Topic, Written>>>(
      [&](auto done) { topics_->Put("t", "orders", std::nullopt, done); });
  ASSERT_TRUE(topic.ok());
  auto sub = [&](const char* q, const char* filter) {
    return Sync<Result<Written>>(
               [&](auto done) { topics_->Subscribe("t", "orders", q, filter, done); })
        .status();
  };
  ASSERT_TRUE(sub("all", "").ok());
  ASSERT_TRUE(sub("eu", R"({"region": {"prefix": "eu-"}})").ok());
  ASSERT_TRUE(sub("gold", R"({"tier": ["gold", "platinum"]})").ok());
  EXPECT_TRUE(sub("missing", "").IsValidation());
  auto publish = [&](std::map<std::string, std::string> attrs) {
    OutgoingMessage m;
    m.body = "o";
    m.attributes = std::move(attrs);
    return Sync<Result<std::vector<std::vector<Delivery>>>>(
        [&](auto done) { topics_->Publish("t", "orders", {m}, done); });
  };
  auto r = publish({{"region", "eu-west"}, {"tier", "free"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)[0].size(), 2u);
  EXPECT_EQ(Receive("all").size(), 1u);
  EXPECT_EQ(Receive("eu").size(), 1u);
  EXPECT_TRUE(Receive("gold").empty());
  // A subscriber that refuses the message fails the whole publish: nothing lands anywhere.
  ASSERT_TRUE(Put("fifo-only", R"({"fifo": true})").ok());
  ASSERT_TRUE(sub("fifo-only", "").ok());
  auto refused = publish({{"tier", "gold"}});
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(Receive("all").empty());
  EXPECT_TRUE(Receive("gold").empty());
}

// Every minute the cleanup records each queue's figures; a day is kept, a deleted queue's go.
TEST_P(QueuesTest, TheHistoryRecordsEachQueuesFiguresAndForgetsOldOnes) {
  ASSERT_TRUE(Put("jobs").ok());
  ASSERT_TRUE(Put("other").ok());
  ASSERT_TRUE(SendOne("jobs", "a").ok());
  ASSERT_TRUE(SendOne("jobs", "b").ok());
  ASSERT_TRUE(queues_->FlushCounters().ok());
  ASSERT_TRUE(queues_->RecordHistory().ok());
  auto got = Receive("jobs", 1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(Ack("jobs", {got[0].receipt}).ok());
  ASSERT_TRUE(queues_->FlushCounters().ok());
  // A moment later (points are keyed by their time).
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(queues_->RecordHistory().ok());
  auto h = queues_->History("t", "jobs", 0);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].depth, 2);
  EXPECT_EQ((*h)[0].sent, 2);
  EXPECT_EQ((*h)[0].acked, 0);
  EXPECT_EQ((*h)[1].depth, 1);
  EXPECT_EQ((*h)[1].received, 1);
  EXPECT_EQ((*h)[1].acked, 1);
  EXPECT_LT((*h)[0].at_ms, (*h)[1].at_ms);
  EXPECT_EQ(queues_->History("t", "jobs", (*h)[1].at_ms)->size(), 1u);
  EXPECT_EQ(queues_->History("other-tenant", "jobs", 0).status().code(), Status::Code::kNotFound);
  // Points older than a day go; so do a deleted queue's.
  ASSERT_TRUE(Exec("UPDATE queue_history SET at = at - 90000000 WHERE queue = 'other'").ok());
  ASSERT_TRUE(Sync<Status>([&](auto done) { queues_->Delete("t", "jobs", done); }).ok());
  ASSERT_TRUE(queues_->RecordHistory().ok());
  int64_t left = -1;
  ASSERT_TRUE(store_
                  ->Read([&](store::Tx& tx) {
                    auto n = tx.QueryInt("SELECT COUNT(*) FROM queue_history");
                    if (n.ok()) left = *n;
                    return n.status();
                  })
                  .ok());
  EXPECT_EQ(left, 1) << "only the newest point of 'other'";
}

}  // namespace
}  // namespace drover::queues
