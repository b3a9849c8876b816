#pragma once
// A workflow's definition (docs/workflows.md): steps of five types in file order or a DAG by
// `needs`, templates checked against the order, retries, timeouts, on_failure steps, a
// concurrency key and topic triggers. Pure: parsing and checks only.
#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace drover::workflows {

enum class StepType { kTask, kHttp, kSleep, kScale, kWait };
std::string_view StepTypeName(StepType t);

struct RetryPolicy {
  int max_attempts = 1;
  std::chrono::milliseconds backoff{1000};
  std::chrono::milliseconds max_backoff{5 * 60'000};
  // The delay before attempt `next` (2, 3, ...): backoff doubled per attempt, capped.
  std::chrono::milliseconds DelayBefore(int next) const;
};

struct StepSpec {
  std::string name;
  StepType type = StepType::kTask;
  // Indexes of the steps this one runs after (the previous step in file order when `needs` is
  // not given); empty: at the start.
  std::vector<int> needs;
  std::optional<std::chrono::milliseconds> timeout;  // per attempt
  RetryPolicy retry;
  // The step's object as defined (compact JSON): the fields rendered when the step runs
  // (queue, command, input, url, method, headers, body, duration, environment, capacity,
  // signal).
  std::string fields;
  std::shared_ptr<const boost::json::value> parsed;  // `fields` parsed, once
  // Type-specific, checked here.
  std::string queue;                      // task
  std::chrono::milliseconds duration{0};  // sleep
  std::string environment;                // scale
  std::string signal;                     // wait (default: the step's name)
};

struct Concurrency {
  std::string key;  // a template over the input
  int max = 1;
};

struct WorkflowSpec {
  std::vector<StepSpec> steps;
  std::vector<StepSpec> on_failure;  // run in order after the execution failed
  std::optional<Concurrency> concurrency;
  std::vector<std::string> trigger_topics;
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};  // of ended executions
  bool waits = false;                                           // a step waits for a signal

  // The index of the step (in steps, then on_failure after them), or -1.
  int Find(std::string_view name) const;
  const StepSpec& At(int index) const;
  int size() const { return static_cast<int>(steps.size() + on_failure.size()); }
};

inline constexpr int kMaxSteps = 100;

// Parses a Workflow document (`{kind, name, spec}`) or a bare spec; Validation with a field
// error per problem (`spec.steps[2].needs[0]`: "no step named prepar").
Result<WorkflowSpec> ParseWorkflowDocument(const boost::json::value& doc, const std::string& name);

}  // namespace drover::workflows
