#pragma once
// What an agent remembers in its work dir across runs and restarts (state.json, owner-only as it
// holds the agent key): who it is, the last commit it ran successfully, the newest signed set it
// accepted, and the last control-center set it read (used while no endpoint answers).
// Writes are atomic (temp file, fsync, rename).
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace drover::agent {

struct AgentState {
  std::string server;
  std::string environment;
  std::string instance_id;
  std::string agent_key;
  std::string last_commit;                      // of the last successful run
  std::string last_repository;                  // the repository last_commit belongs to
  int64_t signed_index = 0;                     // newest signed set accepted
  std::string signed_digest;                    // SHA-256 of that set's body
  std::map<std::string, std::string> last_set;  // last control-center set read
  int64_t last_set_index = 0;
  // The agent-side watcher: the capacity it last applied, and to what (command, cloud, region):
  // a new target is applied afresh.
  std::optional<int64_t> watcher_applied;
  std::string watcher_target;
};

// Loads `path`; a missing file is an empty state. InvalidArgument for a corrupt file.
Result<AgentState> LoadState(const std::string& path);
Status SaveState(const std::string& path, const AgentState& state);

}  // namespace drover::agent
