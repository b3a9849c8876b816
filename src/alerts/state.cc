#include "alerts/state.h"

namespace drover::alerts {

std::string_view PhaseName(Phase p) {
  switch (p) {
    case Phase::kInactive:
      return "inactive";
    case Phase::kPending:
      return "pending";
    case Phase::kFiring:
      return "firing";
  }
  return "inactive";
}

std::string_view TransitionName(Transition t) {
  switch (t) {
    case Transition::kNone:
      return "none";
    case Transition::kPending:
      return "pending";
    case Transition::kFiring:
      return "firing";
    case Transition::kResolved:
      return "resolved";
    case Transition::kCleared:
      return "cleared";
  }
  return "none";
}

Transition Step(AlertState& s, bool active, double value, int64_t now_ms, int64_t for_ms) {
  s.value = value;
  switch (s.phase) {
    case Phase::kInactive:
      if (!active) return Transition::kNone;
      s.active_since_ms = now_ms;
      if (for_ms <= 0) {
        s.phase = Phase::kFiring;
        s.fired_at_ms = now_ms;
        return Transition::kFiring;
      }
      s.phase = Phase::kPending;
      return Transition::kPending;
    case Phase::kPending:
      if (!active) {
        s.phase = Phase::kInactive;
        return Transition::kCleared;
      }
      if (now_ms - s.active_since_ms >= for_ms) {
        s.phase = Phase::kFiring;
        s.fired_at_ms = now_ms;
        return Transition::kFiring;
      }
      return Transition::kNone;
    case Phase::kFiring:
      if (active) return Transition::kNone;
      s.phase = Phase::kInactive;
      s.resolved_at_ms = now_ms;
      return Transition::kResolved;
  }
  return Transition::kNone;
}

bool Compare(Op op, double value, double threshold) {
  switch (op) {
    case Op::kGt:
      return value > threshold;
    case Op::kGe:
      return value >= threshold;
    case Op::kLt:
      return value < threshold;
    case Op::kLe:
      return value <= threshold;
    case Op::kEq:
      return value == threshold;
    case Op::kNe:
      return value != threshold;
  }
  return false;
}

}  // namespace drover::alerts
