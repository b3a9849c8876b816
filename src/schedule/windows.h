#pragma once
// Capacity windows as levels (docs/schedules.md): which environments a window holds right now, from
// the schedules' `window` specs and from the watcher's cc-w-* variables (a built-in window per
// environment: from cc-w-a-start + cc-w-a-start-offset at cc-w-a-desired-capacity, and 0 from
// cc-w-a-stop on). The fleet controller asks it for each environment it reconciles (through
// EnvironmentService::SetHolds), so a server restarted mid-window keeps the window's capacity.
// Reloaded from the store after any schedule or variable change. Thread-safe.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "control/variables.h"
#include "env/environments.h"
#include "schedule/schedules.h"

namespace drover::schedule {

class WindowBook {
 public:
  WindowBook(ScheduleService& schedules, control::VariableService& variables, store::Store& store);
  ~WindowBook();
  env::HoldView At(const std::string& tenant, const std::string& env, int64_t now_ms);
  // Moves when what the windows say changed (not on every variable write): the controller looks
  // at every environment again then.
  uint64_t Version();

 private:
  struct Held {
    std::string name;  // schedule name, or "" for the watcher
    Window window;
    Zone zone = Zone::Utc();
    TimePoint created;
  };
  // The watcher's variables of one environment (global ones under it).
  struct Watcher {
    std::optional<TimePoint> start, stop;
    std::string capacity;
  };
  bool Reload();
  void ReloadIfDirty();  // REQUIRES(mu_)
  ScheduleService& schedules_;
  control::VariableService& variables_;
  store::Store& store_;
  int sub_ = -1;
  std::mutex mu_;
  bool dirty_ = true;     // GUARDED_BY(mu_)
  uint64_t version_ = 0;  // GUARDED_BY(mu_)
  std::string content_;   // GUARDED_BY(mu_): what was loaded, to tell a real change
  std::map<std::pair<std::string, std::string>, std::vector<Held>> windows_;  // GUARDED_BY(mu_)
  std::map<std::string, std::map<std::string, std::string>> global_w_;        // tenant -> cc-w-*
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> env_w_;
};

}  // namespace drover::schedule
