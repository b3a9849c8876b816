#include "workflows/executions.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <random>

#include "queues/settings.h"
#include "testing/fake_clock.h"
#include "testing/store_fixture.h"
#include "testing/sync_call.h"

namespace drover::workflows {
namespace {

using testing::Sync;

class ExecutionsTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "w.db"));
    ASSERT_TRUE(store_);
    queues_ = std::make_unique<queues::QueueService>(*store_, SystemClock::Get());
    workflows_ = std::make_unique<WorkflowService>(*store_);
    executions_ =
        std::make_unique<ExecutionService>(*store_, *workflows_, *queues_, SystemClock::Get());
    auto q = queues::ParseQueueDocument(boost::json::parse("{}"), "q");
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE((Sync<Result<std::pair<queues::Queue, Written>>>([&](auto done) {
                  queues_->Put("t", "q", *q, done);
                })).ok());
  }
  void TearDown() override {
    executions_.reset();
    workflows_.reset();
    queues_.reset();
  }

  void Define(const std::string& name, const std::string& spec) {
    auto r = Sync<Result<std::pair<Workflow, Written>>>(
        [&](auto done) { workflows_->Put("t", name, spec, done); });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::string Start(const std::string& name, const std::string& input) {
    auto r = Sync<Result<ExecutionService::Created>>(
        [&](auto done) { executions_->Create("t", name, input, "", done); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return "";
    EXPECT_TRUE(executions_->Advance(r->execution.id).ok());
    return r->execution.id;
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<queues::QueueService> queues_;
  std::unique_ptr<WorkflowService> workflows_;
  std::unique_ptr<ExecutionService> executions_;
};

DROVER_ON_ALL_BACKENDS(ExecutionsTest);

// Everything the read model says of an execution, steps in a fixed order (a step without a row
// reads as its defaults, as the API shows it).
std::string Describe(const Execution& e, const std::vector<std::string>& steps) {
  const auto& s = e.state;
  std::string out = std::string(ExecutionStatusName(s.status)) + " run " + std::to_string(s.run) +
                    " out " + s.output + " err " + s.error + " seq " + std::to_string(s.last_seq) +
                    " t " + std::to_string(s.started_at_ms) + "/" + std::to_string(s.ended_at_ms) +
                    "\n";
  for (const auto& name : steps) {
    auto it = s.steps.find(name);
    StepState st = it == s.steps.end() ? StepState{} : it->second;
    out += name + ": " + std::string(StepStatusName(st.status)) + " #" +
           std::to_string(st.attempt) + " out " + st.output + " err " + st.error + " t " +
           std::to_string(st.scheduled_at_ms) + "/" + std::to_string(st.due_at_ms) + "/" +
           std::to_string(st.started_at_ms) + "/" + std::to_string(st.ended_at_ms) + " msg " +
           std::to_string(st.message_id) + "\n";
  }
  return out;
}

// Random worker reports -- completions and failures of current, older and newer attempts, each
// maybe delivered twice, in any order, with cancels and retries between them -- then the read
// model rebuilt from the log must be the live one, field for field.
TEST_P(ExecutionsTest, RandomHistoriesRebuildToTheLiveReadModel) {
  Define("dag", R"({"steps":[
      {"name":"a","type":"task","queue":"q","retry":{"max_attempts":3,"backoff":"0s"}},
      {"name":"b","type":"task","queue":"q","needs":["a"],"retry":{"max_attempts":2,"backoff":"0s"}},
      {"name":"c","type":"task","queue":"q","needs":["a"],"input":"{{ steps.a.output }}"},
      {"name":"d","type":"task","queue":"q","needs":["b","c"]}],
      "on_failure":[{"name":"tidy","type":"task","queue":"q"}]})");
  const std::vector<std::string> steps = {"a", "b", "c", "d", "tidy"};
  std::mt19937 rng(20261207);
  std::vector<std::string> ids;
  for (int n = 0; n < 12; ++n) ids.push_back(Start("dag", std::to_string(n)));
  int reports = 0, refused = 0;
  for (const auto& id : ids) {
    for (int op = 0; op < 40; ++op) {
      auto now = executions_->Get("t", id);
      ASSERT_TRUE(now.ok());
      const std::string& step = steps[rng() % steps.size()];
      int current = now->state.steps.count(step) ? now->state.steps.at(step).attempt : 0;
      int attempt = std::max(1, current + static_cast<int>(rng() % 3) - 1);
      int kind = static_cast<int>(rng() % 10);
      auto report = [&] {
        Result<Execution> r = Status::Ok();
        if (kind < 6) {
          r = Sync<Result<Execution>>([&](auto done) {
            executions_->Complete("t", id, step, attempt, std::to_string(attempt), done);
          });
        } else if (kind < 9) {
          r = Sync<Result<Execution>>([&](auto done) {
            executions_->Fail("t", id, step, attempt, "boom", rng() % 2 == 0, done);
          });
        } else if (rng() % 2 == 0) {
          r = Sync<Result<Execution>>([&](auto done) { executions_->Cancel("t", id, done); });
        } else {
          r = Sync<Result<Execution>>([&](auto done) { executions_->Retry("t", id, done); });
        }
        ++reports;
        if (!r.ok()) {
          ++refused;
          EXPECT_TRUE(r.status().IsConflict() || r.status().IsNotFound()) << r.status().ToString();
        }
      };
      report();
      if (rng() % 4 == 0) report();  // the same delivery again
      if (rng() % 3 == 0) {
        ASSERT_TRUE(executions_->Advance(id).ok());
      }
    }
  }
  EXPECT_GT(refused, 0);  // stale and repeated reports were part of the histories
  EXPECT_LT(refused, reports);
  std::map<std::string, std::string> live;
  for (const auto& id : ids) live[id] = Describe(*executions_->Get("t", id), steps);
  auto n = executions_->Rebuild();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, static_cast<int64_t>(ids.size()));
  int ended = 0;
  for (const auto& id : ids) {
    auto e = executions_->Get("t", id);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(Describe(*e, steps), live[id]) << id;
    ended += IsEnded(e->state.status) ? 1 : 0;
  }
  EXPECT_GT(ended, 0);
}

// The engine's Advance is idempotent: advancing an execution again with nothing new appends
// nothing, so two servers advancing one execution cannot double an event.
TEST_P(ExecutionsTest, AdvancingTwiceAppendsNothingNew) {
  Define("one", R"({"steps":[{"name":"a","type":"task","queue":"q"}]})");
  std::string id = Start("one", "null");
  auto before = executions_->Events("t", id, 0, 100);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(executions_->Advance(id).ok());
  ASSERT_TRUE(executions_->Advance(id).ok());
  auto after = executions_->Events("t", id, 0, 100);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), before->size());
  EXPECT_EQ(before->back().kind, kStepScheduled);
  // Another tenant sees nothing of it.
  EXPECT_TRUE(executions_->Get("other", id).status().IsNotFound());
  EXPECT_TRUE(executions_->Events("other", id, 0, 10).status().IsNotFound());
}

// Ended executions go after their workflow's retention, by the database's clock (SQLite's is the
// store's, so a fake one can move it); running ones stay whatever their age.
TEST(ExecutionsExpiry, EndedExecutionsGoAfterTheirRetention) {
  testing::TempDir dir;
  testing::FakeClock clock;
  store::StoreOptions opts;
  opts.clock = &clock;
  auto store = testing::OpenTestStore(dir, "x.db", opts);
  ASSERT_TRUE(store);
  queues::QueueService queues(*store, clock);
  WorkflowService workflows(*store);
  ExecutionService executions(*store, workflows, queues, clock);
  ASSERT_TRUE((Sync<Result<std::pair<Workflow, Written>>>([&](auto done) {
                workflows.Put("t", "short",
                              R"({"steps":[{"name":"w","type":"wait"}],"retention":"1h"})", done);
              })).ok());
  auto start = [&] {
    auto r = Sync<Result<ExecutionService::Created>>(
        [&](auto done) { executions.Create("t", "short", "null", "", done); });
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(executions.Advance(r->execution.id).ok());
    return r->execution.id;
  };
  std::string ended = start(), running = start();
  ASSERT_TRUE(
      (Sync<Result<Execution>>([&](auto done) { executions.Cancel("t", ended, done); })).ok());
  clock.Advance(std::chrono::minutes(59));
  EXPECT_EQ(*executions.Expire(), 0);
  clock.Advance(std::chrono::minutes(2));
  EXPECT_EQ(*executions.Expire(), 1);
  EXPECT_TRUE(executions.Get("t", ended).status().IsNotFound());
  EXPECT_TRUE(executions.Events("t", ended, 0, 10).status().IsNotFound());
  EXPECT_TRUE(executions.Get("t", running).ok());
}

}  // namespace
}  // namespace drover::workflows
