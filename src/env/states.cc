#include "env/states.h"

namespace drover::env {

std::string_view Name(InstanceState s) {
  switch (s) {
    case InstanceState::kPending:
      return "pending";
    case InstanceState::kStarting:
      return "starting";
    case InstanceState::kRunning:
      return "running";
    case InstanceState::kUnhealthy:
      return "unhealthy";
    case InstanceState::kTerminating:
      return "terminating";
    case InstanceState::kTerminated:
      return "terminated";
    case InstanceState::kFailed:
      return "failed";
  }
  return "failed";
}

std::optional<InstanceState> ParseInstanceState(std::string_view name) {
  for (InstanceState s : kInstanceStates) {
    if (Name(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view Name(Phase p) {
  switch (p) {
    case Phase::kStopped:
      return "stopped";
    case Phase::kReady:
      return "ready";
    case Phase::kDegraded:
      return "degraded";
    case Phase::kPending:
      return "pending";
    case Phase::kScaling:
      return "scaling";
  }
  return "degraded";
}

}  // namespace drover::env
