#include "schedule/windows.h"

#include <fmt/format.h>

#include "common/duration.h"
#include "control/values.h"

namespace drover::schedule {
namespace {

bool Ours(const store::Change& c) {
  if (c.resync) return true;
  for (const auto& t : c.topics) {
    if (t == kTopic || t == control::kWatcherTopic) return true;
  }
  return false;
}

}  // namespace

WindowBook::WindowBook(ScheduleService& schedules, control::VariableService& variables,
                       store::Store& store)
    : schedules_(schedules), variables_(variables), store_(store) {
  sub_ = store_.Subscribe([this](const store::Change& c) {
    if (!Ours(c)) return;
    std::lock_guard lock(mu_);
    dirty_ = true;
  });
}

WindowBook::~WindowBook() {
  if (sub_ >= 0) store_.Unsubscribe(sub_);
}

bool WindowBook::Reload() {
  auto all = schedules_.Windows();
  auto vars = variables_.AllWithPrefix(std::string(control::kWatcherPrefix));
  if (!all.ok() || !vars.ok()) return false;
  windows_.clear();
  for (auto& s : *all) {
    if (!s.spec.window) continue;
    windows_[{s.tenant, s.spec.window->environment}].push_back(
        {s.name, *s.spec.window, s.spec.zone, FromUnixMillis(s.created_at_ms)});
  }
  global_w_.clear();
  env_w_.clear();
  std::string content;
  for (auto& s : *all) {
    if (s.spec.window) content += s.tenant + "/" + s.name + "=" + s.spec_json + "\n";
  }
  for (auto& [tenant, v] : *vars) {
    if (control::IsUnsetValue(v.value)) continue;
    content += tenant + "/" + v.environment + "/" + v.key + "=" + v.value + "\n";
    if (v.environment.empty()) {
      global_w_[tenant][v.key] = v.value;
    } else {
      env_w_[{tenant, v.environment}][v.key] = v.value;
    }
  }
  if (content != content_) {
    content_ = std::move(content);
    ++version_;
  }
  return true;
}

void WindowBook::ReloadIfDirty() {
  if (dirty_ && Reload()) dirty_ = false;
}

uint64_t WindowBook::Version() {
  std::lock_guard lock(mu_);
  ReloadIfDirty();
  return version_;
}

env::HoldView WindowBook::At(const std::string& tenant, const std::string& env, int64_t now_ms) {
  std::lock_guard lock(mu_);
  ReloadIfDirty();
  env::HoldView view;
  TimePoint now = FromUnixMillis(now_ms);
  auto earlier = [&](std::optional<TimePoint> t) {
    if (!t) return;
    int64_t ms = ToUnixMillis(*t);
    if (!view.next_change_ms || ms < *view.next_change_ms) view.next_change_ms = ms;
  };
  // Schedules' windows: the largest open one holds.
  if (auto it = windows_.find({tenant, env}); it != windows_.end()) {
    for (const auto& h : it->second) {
      auto st = WindowAt(h.window, h.zone, now, h.created);
      earlier(st.next_change);
      if (st.open && (!view.hold || h.window.capacity > std::stoll(view.hold->capacity))) {
        view.hold = env::CapacityHold{std::to_string(h.window.capacity), "window " + h.name};
      }
    }
  }
  if (view.hold) return view;
  // The watcher: the environment's cc-w-* over the tenant's global ones.
  std::map<std::string, std::string> w;
  if (auto g = global_w_.find(tenant); g != global_w_.end()) w = g->second;
  if (auto e = env_w_.find({tenant, env}); e != env_w_.end()) {
    for (const auto& [k, v] : e->second) w[k] = v;
  }
  auto get = [&](const char* k) -> std::string {
    auto it = w.find(k);
    return it == w.end() ? "" : it->second;
  };
  auto start = ParseRfc3339(get("cc-w-a-start"));
  auto stop = ParseRfc3339(get("cc-w-a-stop"));
  std::string capacity = get("cc-w-a-desired-capacity");
  if (!start || capacity.empty()) return view;
  if (auto off = ParseDuration(get("cc-w-a-start-offset"))) *start += *off;
  // The latest boundary passed decides: a start after a passed stop opens the next window.
  bool started = now >= *start, stopped = stop && now >= *stop;
  if (stopped && (!started || *stop >= *start)) {
    view.hold = env::CapacityHold{"0", "watcher (cc-w-a-stop " + FormatRfc3339(*stop) + ")"};
  } else if (started) {
    view.hold = env::CapacityHold{capacity, "watcher (cc-w-a-start " + FormatRfc3339(*start) + ")"};
  }
  if (!started) earlier(*start);
  if (stop && !stopped) earlier(*stop);
  return view;
}

}  // namespace drover::schedule
