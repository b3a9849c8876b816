#pragma once
// The life of one alert (a rule and one label set), as Prometheus and Alertmanager have it: a
// pure state machine over (condition true?, now), no clock and no I/O.
//
//   inactive --true--> pending --true for `for`--> firing --false--> resolved (then inactive)
//                        |--false--> inactive (it never fired: nothing to tell)
//
// With `for` = 0 a true condition fires at once.
#include <cstdint>
#include <string_view>

namespace drover::alerts {

enum class Phase { kInactive, kPending, kFiring };

std::string_view PhaseName(Phase p);  // "inactive", "pending", "firing"

struct AlertState {
  Phase phase = Phase::kInactive;
  int64_t active_since_ms = 0;  // when the condition last became true
  int64_t fired_at_ms = 0;      // when it last started firing
  int64_t resolved_at_ms = 0;   // when it last stopped firing
  double value = 0;             // the signal's value at the last evaluation
};

// What an evaluation changed, for the history, the change feed and notifications.
enum class Transition {
  kNone,
  kPending,   // the condition became true; waiting for `for`
  kFiring,    // it stayed true for `for`: notify
  kResolved,  // a firing alert's condition became false: notify
  kCleared,   // a pending alert's condition became false before `for`: nothing to notify
};

std::string_view TransitionName(Transition t);

// Advances `s` by one evaluation at `now_ms` where the condition is `active` with `value`.
Transition Step(AlertState& s, bool active, double value, int64_t now_ms, int64_t for_ms);

// Comparison operators of threshold and rate conditions.
enum class Op { kGt, kGe, kLt, kLe, kEq, kNe };

bool Compare(Op op, double value, double threshold);

}  // namespace drover::alerts
