#include "agent/watcher.h"

#include <fmt/format.h>

#include "control/values.h"

namespace drover::agent {
namespace {

constexpr auto kQuietBeforeStop = std::chrono::seconds(60);

std::optional<TimePoint> TimeOf(const std::map<std::string, std::string>& vars, const char* key) {
  auto it = vars.find(key);
  if (it == vars.end() || control::IsUnsetValue(it->second)) return std::nullopt;
  return ParseRfc3339(it->second);
}

}  // namespace

WatcherDecision DecideCapacity(const std::map<std::string, std::string>& vars,
                               const std::string& cloud, const std::string& region, TimePoint now,
                               std::optional<int64_t> last_applied) {
  auto start = TimeOf(vars, "cc-a-start");
  auto stop = TimeOf(vars, "cc-a-stop");
  std::optional<int64_t> target;
  std::string why;
  // The latest boundary passed decides: a start later than a passed stop opens a new window.
  bool started = start && now >= *start, stopped = stop && now >= *stop;
  if (stopped && (!started || *stop >= *start)) {
    target = 0;
    why = "cc-a-stop " + FormatRfc3339(*stop) + " has passed";
  } else if (start && !started) {
    return {std::nullopt, "waiting for cc-a-start " + FormatRfc3339(*start)};
  } else if (stop && !stopped && *stop - now <= kQuietBeforeStop) {
    return {std::nullopt, "no change within 60 s of cc-a-stop " + FormatRfc3339(*stop)};
  } else {
    auto it = vars.find("cc-a-desired-capacity");
    if (it == vars.end() || control::IsUnsetValue(it->second)) {
      return {std::nullopt, "cc-a-desired-capacity is not set"};
    }
    auto parsed = control::ParseCapacity(it->second);
    if (!parsed.ok()) {
      return {std::nullopt, "cc-a-desired-capacity: " + parsed.status().message()};
    }
    target = control::ResolveCapacity(*parsed, cloud, region);
    std::string where = cloud.empty() ? "all" : region.empty() ? cloud : cloud + "." + region;
    if (!target) return {std::nullopt, "cc-a-desired-capacity leaves " + where + " alone"};
    why = fmt::format("cc-a-desired-capacity for {}", where);
  }
  if (last_applied && *last_applied == *target) {
    return {std::nullopt, fmt::format("{} already applied ({})", *target, why)};
  }
  return {target, why};
}

std::optional<TimePoint> NextWatcherChange(const std::map<std::string, std::string>& vars,
                                           TimePoint now) {
  std::optional<TimePoint> next;
  auto consider = [&](std::optional<TimePoint> t) {
    if (t && *t > now && (!next || *t < *next)) next = t;
  };
  consider(TimeOf(vars, "cc-a-start"));
  if (auto stop = TimeOf(vars, "cc-a-stop")) {
    consider(*stop);
    consider(*stop - kQuietBeforeStop);
  }
  return next;
}

}  // namespace drover::agent
