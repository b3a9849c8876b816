#include "workflows/history.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace drover::workflows {
namespace {

WorkflowSpec Spec(std::string_view text) {
  auto r = ParseWorkflowDocument(boost::json::parse(text), "wf");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : WorkflowSpec{};
}

// An execution driven by Decide, with a log of what was appended.
struct Driver {
  explicit Driver(WorkflowSpec s) : spec(std::move(s)) {}
  WorkflowSpec spec;
  std::vector<Event> log;
  ExecutionState state;
  int64_t now = 1000;

  void Append(Event e) {
    e.seq = static_cast<int64_t>(log.size()) + 1;
    if (!e.at_ms) e.at_ms = now;
    Apply(state, e);
    log.push_back(std::move(e));
  }
  Decision Step(bool may_start = true) {
    Decision d = Decide(spec, state, now, may_start);
    for (auto& e : d.events) Append(e);
    return d;
  }
  std::vector<std::string> Kinds(size_t from = 0) const {
    std::vector<std::string> out;
    for (size_t i = from; i < log.size(); ++i) {
      out.push_back(log[i].kind + (log[i].step.empty() ? "" : ":" + log[i].step) + "#" +
                    std::to_string(log[i].attempt));
    }
    return out;
  }
  void Worker(std::string_view kind, const std::string& step, int attempt, std::string data) {
    Event e;
    e.kind = kind;
    e.step = step;
    e.attempt = attempt;
    e.data = std::move(data);
    Append(std::move(e));
  }
};

using Strings = std::vector<std::string>;

TEST(WorkflowDecide, ADagFansOutAndIn) {
  Driver r{Spec(R"({"steps":[{"name":"a","type":"task","queue":"q"},
      {"name":"b","type":"task","queue":"q","needs":["a"]},
      {"name":"c","type":"task","queue":"q","needs":["a"]},
      {"name":"d","type":"task","queue":"q","needs":["b","c"],"input":"{{ steps.b.output }}"}]})")};
  r.Worker(kExecutionCreated, "", 0, R"({"input":{"x":1}})");
  auto d = r.Step(false);
  EXPECT_TRUE(d.events.empty());  // held: may not start
  d = r.Step();
  EXPECT_EQ(r.Kinds(1), (Strings{"execution_started#0", "step_scheduled:a#1"}));
  ASSERT_EQ(d.work.size(), 1u);
  EXPECT_EQ(d.work[0].step, 0);
  r.Worker(kStepStarted, "a", 1, "{}");
  r.Worker(kStepSucceeded, "a", 1, R"({"output":{"rows":2}})");
  size_t mark = r.log.size();
  d = r.Step();
  EXPECT_EQ(r.Kinds(mark), (Strings{"step_scheduled:b#1", "step_scheduled:c#1"}));
  EXPECT_EQ(d.work.size(), 2u);
  r.Worker(kStepSucceeded, "b", 1, R"({"output":"B"})");
  mark = r.log.size();
  r.Step();
  EXPECT_TRUE(r.Kinds(mark).empty());  // d still waits for c
  r.Worker(kStepSucceeded, "c", 1, R"({"output":"C"})");
  r.Step();
  r.Worker(kStepSucceeded, "d", 1, R"({"output":{"done":true}})");
  r.Step();
  EXPECT_EQ(r.state.status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(r.state.output, R"({"done":true})");
  EXPECT_EQ(r.log.back().kind, kExecutionSucceeded);
}

TEST(WorkflowDecide, RetriesWithBackoffThenFailsAndRunsOnFailure) {
  Driver r{Spec(R"({"steps":[{"name":"a","type":"task","queue":"q",
        "retry":{"max_attempts":2,"backoff":"10s"}},{"name":"b","type":"sleep","duration":"1s"}],
      "on_failure":[{"name":"tidy","type":"sleep","duration":"5s"}]})")};
  r.Worker(kExecutionCreated, "", 0, R"({"steps":["a","b","tidy"]})");
  r.Step();
  r.Worker(kStepStarted, "a", 1, "{}");
  r.Worker(kStepFailed, "a", 1, R"({"error":"boom","final":false})");
  auto d = r.Step();
  ASSERT_EQ(d.work.size(), 1u);
  EXPECT_EQ(d.work[0].attempt, 2);
  EXPECT_EQ(d.work[0].due_at_ms, r.now + 10'000);  // the backoff
  EXPECT_EQ(r.state.steps["a"].status, StepStatus::kScheduled);
  r.Worker(kStepFailed, "a", 2, R"({"error":"boom again","final":true})");
  size_t mark = r.log.size();
  r.Step();
  EXPECT_EQ(r.Kinds(mark),
            (Strings{"execution_failed#0", "step_scheduled:tidy#1", "step_started:tidy#1"}));
  EXPECT_EQ(r.state.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.state.error, "step a failed: boom again");
  EXPECT_EQ(r.state.steps["b"].status, StepStatus::kSkipped);  // never ran
  r.now += 5000;
  r.Step();
  EXPECT_EQ(r.state.steps["tidy"].status, StepStatus::kSucceeded);
  EXPECT_EQ(r.state.status, ExecutionStatus::kFailed);  // whatever on_failure does

  // Retry from the failed step: a new run, attempt 3 of a.
  r.Worker(kExecutionRetried, "", 1, "{}");
  d = r.Step();
  ASSERT_EQ(d.work.size(), 1u);
  EXPECT_EQ(d.work[0].attempt, 3);
  EXPECT_EQ(r.state.status, ExecutionStatus::kRunning);
}

TEST(WorkflowDecide, SleepsWaitsAndTimeoutsWakeAtTheirTime) {
  Driver r{Spec(R"({"steps":[{"name":"nap","type":"sleep","duration":"30s"},
      {"name":"approve","type":"wait","timeout":"1m"},
      {"name":"fetch","type":"http","url":"http://127.0.0.1:1/","timeout":"5s"}]})")};
  r.Worker(kExecutionCreated, "", 0, "{}");
  auto d = r.Step();
  EXPECT_EQ(d.wake_at_ms, r.now + 30'000);
  r.now += 30'000;
  d = r.Step();
  EXPECT_EQ(r.state.steps["nap"].status, StepStatus::kSucceeded);
  EXPECT_EQ(r.state.steps["approve"].status, StepStatus::kRunning);
  EXPECT_EQ(d.wake_at_ms, r.now + 60'000);  // the wait's timeout
  r.Worker(kSignalReceived, "approve", 0, R"({"payload":{"ok":true}})");
  d = r.Step();
  EXPECT_EQ(r.state.steps["approve"].output, R"({"ok":true})");
  ASSERT_EQ(d.work.size(), 1u);  // the http call is someone else's work
  EXPECT_EQ(d.work[0].step, 2);
  r.now += 5000;
  r.Step();
  EXPECT_EQ(r.state.status, ExecutionStatus::kFailed);
  EXPECT_EQ(r.state.error, "step fetch failed: timed out after 5s");
}

TEST(WorkflowFold, DuplicatesAndReplaysFoldToTheSameState) {
  Driver r{Spec(R"({"steps":[{"name":"a","type":"task","queue":"q"},
      {"name":"b","type":"task","queue":"q"}]})")};
  r.Worker(kExecutionCreated, "", 0, R"({"input":[1]})");
  r.Step();
  r.Worker(kStepSucceeded, "a", 1, R"({"output":1})");
  r.Step();
  r.Worker(kStepSucceeded, "b", 1, R"({"output":2})");
  r.Step();
  std::vector<Event> with_dups;
  for (const auto& e : r.log) {
    with_dups.push_back(e);
    if (e.seq % 2 == 0) with_dups.push_back(e);  // delivered twice
  }
  ExecutionState folded = Fold(with_dups);
  EXPECT_EQ(folded.status, ExecutionStatus::kSucceeded);
  EXPECT_EQ(folded.output, "2");
  EXPECT_EQ(folded.input, "[1]");
  EXPECT_EQ(folded.steps.size(), r.state.steps.size());
  EXPECT_EQ(folded.last_seq, r.state.last_seq);
}

}  // namespace
}  // namespace drover::workflows
