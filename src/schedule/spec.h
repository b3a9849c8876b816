#pragma once
// A schedule's declarative spec (docs/schedules.md) and when it fires. docs/schedules.md.
//
//   {cron: "0 13 * * 1-5" | at: "2026-12-01T13:00:00Z", timezone: "Europe/Berlin", offset: "3m",
//    catch_up: true,
//    action: {type: scale, environment: E, capacity: 3} | {type: stop, environment: E}
//          | {type: start_workflow, workflow: W, input: {...}} | {type: cleanup}}
//
//   {window: {environment: E, start: CRON | RFC3339, stop: CRON | RFC3339 | duration: 6h,
//             capacity: 3, offset: 3m}, timezone: ...}
//
// A window is a level, not a pair of actions: while it is open the fleet controller holds the
// environment at the window's capacity (a server restarted mid-window keeps it).
#include <boost/json/fwd.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "cron/cron.h"

namespace drover::schedule {

// Schedules speak in cron expressions and time zones (src/cron: pure, shared with the control
// center's value rules).
using cron::Cron;
using cron::FormatInZone;
using cron::Zone;

struct Action {
  std::string type;  // scale | stop | start_workflow | cleanup
  std::string environment;
  int64_t capacity = 0;
  std::string workflow;             // start_workflow
  std::string input_json = "null";  // start_workflow: the execution's input
};

// One end of a window: a cron expression or an instant.
struct Boundary {
  std::optional<Cron> cron;
  std::optional<TimePoint> at;
  std::string text;  // as given
};

struct Window {
  std::string environment;
  Boundary start;
  std::optional<Boundary> stop;  // or:
  std::optional<std::chrono::milliseconds> duration;
  int64_t capacity = 0;
  std::chrono::milliseconds offset{0};  // added to each start
};

struct ScheduleSpec {
  std::optional<Cron> cron;
  std::optional<TimePoint> at;
  std::optional<Window> window;
  Zone zone = Zone::Utc();
  std::chrono::milliseconds offset{0};  // added to every fire time; may be negative
  bool catch_up = true;
  Action action;
};

// Parses a Schedule document (`{kind, name, spec}`) or a bare spec; Validation with a field
// error per problem ("spec.cron": "minute: 61 is out of range 0-59").
Result<ScheduleSpec> ParseScheduleDocument(const boost::json::value& doc, const std::string& name);
// The canonical JSON of a spec (stored; shown by GET).
std::string SpecToJson(const ScheduleSpec& spec);

// The first fire time strictly after `after` (cron or at, with the offset); `created` anchors
// @every. nullopt: no more (an `at` that passed, a window).
std::optional<TimePoint> NextFire(const ScheduleSpec& spec, TimePoint after, TimePoint created);

// What a schedule fires next, looked at `now` after its last firing was due at `last_due`
// (nullopt: none yet, counted from `created`). A due time more than a second past was missed
// (no server ran then): with catch_up it fires once, for the latest missed time however long
// the gap; without, the next time after now is due. nullopt: nothing more to fire.
struct Due {
  TimePoint at;
  bool catch_up = false;
};
std::optional<Due> NextDue(const ScheduleSpec& spec, std::optional<TimePoint> last_due,
                           TimePoint created, TimePoint now);

// A window's state at `now`: whether it is open, and when that can next change.
struct WindowState {
  bool open = false;
  std::optional<TimePoint> next_change;
};
WindowState WindowAt(const Window& w, const Zone& zone, TimePoint now, TimePoint created);

}  // namespace drover::schedule
