#pragma once
// The states an instance moves through and the phases an environment shows
// (docs/environments.md), as enums: the names are what the store and the API carry.
#include <cstdint>
#include <optional>
#include <string_view>

namespace drover::env {

enum class InstanceState : uint8_t {
  kPending,      // recorded, not started yet (no version writes it today; read as written)
  kStarting,     // started or joined, no heartbeat yet
  kRunning,      // heartbeats arrive
  kUnhealthy,    // silent, or its process is gone; the restart policy decides
  kTerminating,  // the controller is stopping it
  kTerminated,   // gone (kept for a while as history)
  kFailed,       // given up on; keeps its place until the capacity or spec changes
};
inline constexpr InstanceState kInstanceStates[] = {
    InstanceState::kPending,   InstanceState::kStarting,    InstanceState::kRunning,
    InstanceState::kUnhealthy, InstanceState::kTerminating, InstanceState::kTerminated,
    InstanceState::kFailed};

std::string_view Name(InstanceState s);
// nullopt for a name that is no state (a damaged row).
std::optional<InstanceState> ParseInstanceState(std::string_view name);
// Starting, running or unhealthy: it has (or should have) an agent, and counts as up.
inline bool IsLive(InstanceState s) {
  return s == InstanceState::kStarting || s == InstanceState::kRunning ||
         s == InstanceState::kUnhealthy;
}

enum class Phase : uint8_t { kStopped, kReady, kDegraded, kPending, kScaling };
inline constexpr Phase kPhases[] = {Phase::kStopped, Phase::kReady, Phase::kDegraded,
                                    Phase::kPending, Phase::kScaling};
std::string_view Name(Phase p);

}  // namespace drover::env
