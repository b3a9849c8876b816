#pragma once
// What agents report after each run (docs/agent.md), stored once per run id and listed newest
// first. Thread-safe; writes are group-committed.
#include <functional>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/status.h"
#include "env/records.h"
#include "store/store.h"

namespace drover::env {

class RunService {
 public:
  RunService(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}
  // Stores a run report once (a repeated run_id returns the stored run, created = false).
  void RecordRun(Instance inst, RunReport report,
                 std::function<void(Result<std::pair<Run, bool>>)> done);
  // Newest first; cursor = the seq to continue below.
  Result<Page<Run>> Runs(const std::string& instance, const std::string& cursor, int limit);
  Result<Run> GetRun(const std::string& instance, int64_t seq);

 private:
  store::Store& store_;
  const Clock& clock_;
};

}  // namespace drover::env
