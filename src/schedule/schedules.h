#pragma once
// Schedules and their firings as records (docs/schedules.md). The scheduler (scheduler.h) decides
// when they fire; here they are stored, listed and their firings recorded exactly once per due
// time.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/page.h"
#include "common/status.h"
#include "schedule/spec.h"
#include "store/lease.h"
#include "store/store.h"

namespace drover::schedule {

// Change topic of every schedule write. Firings are bookkeeping: they take no change index and
// notify nobody (the global index moves for what API readers wait on, not for every firing).
inline constexpr std::string_view kTopic = "schedules";

struct Schedule {
  std::string tenant, name;
  std::string spec_json;
  ScheduleSpec spec;
  int64_t create_index = 0, modify_index = 0;
  int64_t created_at_ms = 0, updated_at_ms = 0;
};

struct Firing {
  std::string tenant, name;
  int64_t due_ms = 0;
  int64_t fired_at_ms = 0;
  std::string kind;    // schedule | catch-up | manual
  std::string status;  // pending | ok | failed
  std::string result;
  std::string server;
};

using drover::Page;

class ScheduleService {
 public:
  ScheduleService(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Creates (true) or updates the schedule.
  void Put(std::string tenant, std::string name, ScheduleSpec spec,
           std::function<void(Result<std::pair<Schedule, Written>>)> done);
  Result<Schedule> Get(const std::string& tenant, const std::string& name);
  Result<Page<Schedule>> List(const std::string& tenant, const std::string& cursor, int limit);
  void Delete(std::string tenant, std::string name, std::function<void(Status)> done);
  // Newest first; cursor = the last due (ms) seen.
  Result<Page<Firing>> Firings(const std::string& tenant, const std::string& name,
                               const std::string& cursor, int limit);

  // --- for the scheduler: synchronous ----------------------------------------------------
  Result<std::vector<Schedule>> All();
  // The window schedules only (for the window book).
  Result<std::vector<Schedule>> Windows();
  // Every schedule's (tenant, name, modify_index): what the scheduler compares to read only
  // the schedules that changed.
  struct Version {
    std::string tenant, name;
    int64_t modify_index = 0;
  };
  Result<std::vector<Version>> Versions();
  // The latest due time the schedule fired by itself (not manual), if any.
  Result<std::optional<int64_t>> LastDue(const std::string& tenant, const std::string& name);
  // The latest due time fired by the schedule itself (not manual triggers), per schedule.
  Result<std::map<std::pair<std::string, std::string>, int64_t>> LastDues();
  // Records firings as pending, fenced by `lease` (null: unfenced): the ones recorded now;
  // a due time fired before (by this or another server) is left out.
  Result<std::vector<Firing>> Record(std::vector<Firing> firings, const store::Lease* lease);
  // Records a manual firing of the schedule as pending, due now (or the next millisecond that is
  // neither taken by another firing nor one of the schedule's own fire times); `done` after
  // the commit.
  void RecordManual(const Schedule& s, std::string server,
                    std::function<void(Result<Firing>)> done);
  // Firings still pending that were recorded before `before_ms` (their server died before the
  // action finished): the leader runs them again (actions are idempotent: scale to N).
  Result<std::vector<Firing>> Pending(int64_t before_ms);
  // Sets the outcome of recorded firings.
  Status Finish(const std::vector<Firing>& firings);
  void FinishAsync(std::vector<Firing> firings, std::function<void(Status)> done);
  // Keeps the newest `keep` firings per schedule; the number removed.
  Result<int64_t> PruneFirings(int64_t keep);
  // Schedules, and firings kept by status (pending, ok, failed), over every tenant (for the
  // gauges; the built-in cleanup's own firings are not counted).
  struct Counts {
    int64_t schedules = 0;
    std::map<std::string, int64_t> firings_by_status;
    // By (tenant, schedule): whether its latest finished firing failed.
    std::map<std::pair<std::string, std::string>, bool> last_failed;
  };
  Result<Counts> Count();
  int64_t NowMillis() const { return ToUnixMillis(clock_.Now()); }

 private:
  store::Store& store_;
  const Clock& clock_;
};

}  // namespace drover::schedule
