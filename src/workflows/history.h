#pragma once
// An execution's event log and what it folds to (docs/workflows.md). Pure: the store appends
// events and keeps the folded state as its read model in the same transaction; `drover admin
// rebuild` folds the log again. Decide() is the engine: from the definition, the state and
// the time, the events that happen next.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/definition.h"

namespace drover::workflows {

enum class ExecutionStatus { kPending, kRunning, kSucceeded, kFailed, kCancelled };
enum class StepStatus { kPending, kScheduled, kRunning, kSucceeded, kFailed, kSkipped, kCancelled };
std::string_view ExecutionStatusName(ExecutionStatus s);
std::string_view StepStatusName(StepStatus s);
bool ParseExecutionStatus(std::string_view s, ExecutionStatus* out);
bool ParseStepStatus(std::string_view s, StepStatus* out);
bool IsEnded(ExecutionStatus s);
bool IsEnded(StepStatus s);

// Event kinds.
inline constexpr std::string_view kExecutionCreated = "execution_created";
inline constexpr std::string_view kExecutionStarted = "execution_started";
inline constexpr std::string_view kStepScheduled = "step_scheduled";
inline constexpr std::string_view kStepStarted = "step_started";
inline constexpr std::string_view kStepSucceeded = "step_succeeded";
inline constexpr std::string_view kStepFailed = "step_failed";
inline constexpr std::string_view kSignalReceived = "signal_received";
inline constexpr std::string_view kExecutionSucceeded = "execution_succeeded";
inline constexpr std::string_view kExecutionFailed = "execution_failed";
inline constexpr std::string_view kExecutionCancelled = "execution_cancelled";
inline constexpr std::string_view kExecutionRetried = "execution_retried";

struct Event {
  int64_t seq = 0;  // 1, 2, ... in its execution (given when appended)
  std::string kind;
  std::string step;         // the step, or the signal's name (signal_received); "" otherwise
  int attempt = 0;          // a step's attempt; the run (0, then 1 per retry) of execution events
  std::string data = "{}";  // a JSON object: input, output, error, payload, due_at, ...
  int64_t at_ms = 0;

  // The event's unique id in its execution: appending an id that exists changes nothing.
  std::string Id() const;
};
std::string EventId(std::string_view kind, std::string_view step, int attempt);
// An event to append (seq and time are given when it is).
Event MakeEvent(std::string_view kind, std::string step = "", int attempt = 0,
                std::string data = "{}");

struct StepState {
  StepStatus status = StepStatus::kPending;
  int attempt = 0;              // the latest attempt scheduled (0: never)
  std::string output = "null";  // JSON
  std::string error;
  int64_t scheduled_at_ms = 0, due_at_ms = 0, started_at_ms = 0, ended_at_ms = 0;
  int64_t message_id = 0;  // a task attempt's message on its queue (0: none)
};

struct ExecutionState {
  ExecutionStatus status = ExecutionStatus::kPending;
  int run = 0;  // retries of the whole execution so far
  std::string input = "null", output = "null", error;
  std::map<std::string, StepState> steps;
  std::map<std::string, std::string> signals;  // name -> payload (JSON), once each
  int64_t created_at_ms = 0, started_at_ms = 0, ended_at_ms = 0;
  int64_t last_seq = 0;
};

// Folds one event into the state (the read model's rules).
void Apply(ExecutionState& s, const Event& e);

// Folds a log, skipping events whose id was seen before (duplicates): what a rebuild gives.
ExecutionState Fold(const std::vector<Event>& log);

// What happens next. `may_start`: a pending execution is not held by its concurrency key.
struct Decision {
  std::vector<Event> events;  // to append, in order (seq and at_ms still 0)
  // Steps scheduled by `events` whose work is someone else's: a task's message, an http
  // call, a scale (indexes into the spec, with the attempt).
  struct Work {
    int step = 0;
    int attempt = 0;
    int64_t due_at_ms = 0;
  };
  std::vector<Work> work;
  int64_t wake_at_ms = 0;  // call Decide again then (a sleep, a timeout, a backoff); 0: never
};
Decision Decide(const WorkflowSpec& spec, const ExecutionState& s, int64_t now_ms, bool may_start);

}  // namespace drover::workflows
