#pragma once
// The agent-side watcher (docs/environments.md, docs/agent.md): an agent started with --watcher
// applies cc-a-desired-capacity, resolved for its own cloud and region, to its instance group
// through a provider script (the same set-capacity scripts as the exec provider's group mode, with
// the same JSON on stdin). cc-a-start / cc-a-stop make it a window:
//   before cc-a-start                  leave the group alone
//   from cc-a-start to cc-a-stop       the desired capacity
//   within 60 s before cc-a-stop       no change (the stop is about to scale it anyway)
//   from cc-a-stop on                  0
// The latest boundary passed decides, so a start set after a past stop opens a new window.
// A value equal to the last one applied is not applied again.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/clock.h"

namespace drover::agent {

struct WatcherDecision {
  std::optional<int64_t> apply;  // the capacity to set; nullopt: nothing to do
  std::string why;               // for the log: what was decided and why
};

// Pure: what the watcher does with the effective set `vars` at `now`, given the capacity it
// applied last (nullopt: none yet).
WatcherDecision DecideCapacity(const std::map<std::string, std::string>& vars,
                               const std::string& cloud, const std::string& region, TimePoint now,
                               std::optional<int64_t> last_applied);

// When the decision can next change by the clock alone (the window's start or stop, or the
// start of the quiet minute before the stop); nullopt when only a new set can change it.
std::optional<TimePoint> NextWatcherChange(const std::map<std::string, std::string>& vars,
                                           TimePoint now);

}  // namespace drover::agent
