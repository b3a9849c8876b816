#include "fleet/plan.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/duration.h"

namespace drover::fleet {
namespace {

using env::InstanceState;

// An instance that ran this long before it failed starts a fresh restart count: a crash loop is
// what the count and the backoff are for.
constexpr int64_t kHealthyResetMs = 10 * 60 * 1000;

std::string Seconds(int64_t ms) {
  return FormatDuration(std::chrono::milliseconds(ms / 1000 * 1000));
}

struct Planner {
  const env::Environment& e;
  const Observations& obs;
  int64_t now;
  const PlanOptions& opts;
  Plan plan;
  std::vector<env::Instance> model;   // the instances as they will be once the actions ran
  std::vector<int64_t> replacements;  // restart counts of the replacements to start

  void Due(int64_t at) { plan.due = std::min(plan.due, at); }
  void Add(ActionKind kind, const env::Instance& inst, std::string reason, int64_t number = 0) {
    plan.actions.push_back({kind, inst, std::move(reason), number});
  }

  int64_t Grace() const {
    const auto& h = e.spec.health;
    return h.heartbeat_interval.count() * h.unhealthy_after;
  }
  // The list is asked as often as heartbeats are judged, and a new instance may be missing from
  // it for as long (clouds list new machines with a delay).
  int64_t ListEvery() const { return std::max<int64_t>(Grace(), 1000); }

  // Why a live instance that is not yet unhealthy is now; "" while it is fine.
  std::string Silent(const env::Instance& inst) {
    const auto& health = e.spec.health;
    auto alive = obs.alive.find(inst.id);
    int64_t last = inst.last_heartbeat_ms.value_or(inst.created_at_ms);
    // A starting agent gets the start-up time of a first heartbeat on top (fetching a repository
    // may come first); heartbeats another server buffers arrive within a flush period.
    int64_t allowed =
        (inst.last_heartbeat_ms ? Grace() : Grace() + 30000) + opts.heartbeat_flush_ms;
    // An agent run by cron (--once) is silent between runs: it is judged by the age of its last
    // run (or heartbeat) against its interval, missed runs counted like heartbeats, plus one
    // interval (at most a minute) for cron's jitter and cc-a-delay.
    bool cron = inst.run_mode == "once" && inst.run_interval_ms > 0;
    if (cron) {
      if (inst.last_run) last = std::max(last, inst.last_run->finished_at_ms);
      allowed = inst.run_interval_ms * std::max<int64_t>(health.unhealthy_after, 1) +
                std::min<int64_t>(inst.run_interval_ms, 60000);
    }
    if (alive != obs.alive.end() && !alive->second) return "its agent process is gone";
    if (obs.listed && !inst.provider_id.empty() && !obs.listed->count(inst.provider_id) &&
        now - inst.created_at_ms > ListEvery()) {
      return "the provider's list no longer has it (" + inst.provider_id + ")";
    }
    if (now - last > allowed) {
      plan.deadline_lags.push_back(static_cast<double>(now - last - allowed) / 1000.0);
      return cron ? fmt::format("no run for {} (cron runs it every {})", Seconds(now - last),
                                FormatDuration(std::chrono::milliseconds(inst.run_interval_ms)))
                  : fmt::format("no heartbeat for {}", Seconds(now - last));
    }
    Due(last + allowed + 1);
    // A process the provider watches (local agents) is looked at every resync.
    if (alive != obs.alive.end()) Due(now + opts.resync_ms);
    // Missing from the list while still new: judged once it is old enough to be listed.
    if (obs.listed && !inst.provider_id.empty() && !obs.listed->count(inst.provider_id)) {
      Due(inst.created_at_ms + ListEvery() + 1);
    }
    return "";
  }

  // 1. Health: gone or silent instances become unhealthy; unhealthy ones are replaced, or given
  // up on, per the restart policy.
  void Health(const std::vector<env::Instance>& instances) {
    const auto& health = e.spec.health;
    for (auto inst : instances) {
      if (!env::IsLive(inst.state)) {
        model.push_back(std::move(inst));
        continue;
      }
      int64_t since = inst.updated_at_ms;  // when it became unhealthy (its row says)
      if (inst.state != InstanceState::kUnhealthy) {
        std::string why = Silent(inst);
        if (why.empty()) {
          model.push_back(std::move(inst));
          continue;
        }
        Add(ActionKind::kMarkUnhealthy, inst, why);
        inst.state = InstanceState::kUnhealthy;
        inst.state_reason = why;
        since = now;
      }
      // The backoff runs from the time in its row, so a server taking over goes on with it.
      bool long_lived = since - inst.created_at_ms > kHealthyResetMs;
      int64_t restarts = long_lived ? 0 : inst.restarts;
      bool restart = health.restart == "always" || health.restart == "on-failure";
      if (!restart || restarts >= health.max_restarts) {
        std::string why = !restart ? "unhealthy and the restart policy is never"
                                   : fmt::format("unhealthy after {} restarts (max_restarts {})",
                                                 restarts, health.max_restarts);
        Add(ActionKind::kFail, inst, std::move(why));
        inst.state = InstanceState::kFailed;
        model.push_back(std::move(inst));
        continue;
      }
      // Exponential backoff per instance: the first replacement at once, then 1 s, 2 s, 4 s ...
      // up to 5 min after it became unhealthy. Meanwhile it keeps its place.
      int64_t delay = restarts == 0
                          ? 0
                          : std::min<int64_t>(1000LL << std::min<int64_t>(restarts - 1, 9), 300000);
      if (now < since + delay || obs.mode != Mode::kInstances) {
        if (now < since + delay) Due(since + delay);
        model.push_back(std::move(inst));  // static and group: its agent may come back
        continue;
      }
      // Replaced: the old one stops, a new one starts below with one more restart.
      Add(ActionKind::kReplace, inst, "replaced: " + inst.state_reason);
      replacements.push_back(restarts + 1);
    }
  }

  void GroupSize() {
    if (!obs.desired || obs.applied_group_size == obs.desired) return;
    if (now < obs.backoff_until) return Due(obs.backoff_until);
    Add(ActionKind::kSetGroupSize, {}, fmt::format("group size set to {}", *obs.desired),
        *obs.desired);
  }

  // 2. Size: idle scales to 0; the missing start; extras go, failed first, then newest first.
  void Size() {
    if (obs.desired_changes_at) Due(*obs.desired_changes_at);
    if (!obs.desired) return;  // the capacity map leaves this group alone
    int64_t desired = *obs.desired;
    // Idle: no spec or scale change, no run reported and no proxied request (the gateway's
    // touch) for idle_timeout → scale to 0.
    int64_t idle = e.spec.idle_timeout.count();
    if (idle > 0 && desired > 0) {
      int64_t activity = std::max(e.updated_at_ms, e.active_at_ms);
      for (const auto& i : model) {
        if (i.last_run) activity = std::max(activity, i.last_run->finished_at_ms);
      }
      if (now - activity <= idle) {
        Due(activity + idle + 1);
      } else {
        Add(ActionKind::kIdle, {},
            fmt::format("idle: no activity for {} (idle_timeout {}); scaled to 0",
                        Seconds(now - activity), FormatDuration(e.spec.idle_timeout)));
        desired = 0;
      }
    }
    // A failed instance keeps its place (its restarts are used up, or the policy is never):
    // nothing replaces it until the capacity or the spec changes.
    std::vector<env::Instance> up;
    for (const auto& i : model) {
      if (env::IsLive(i.state) || i.state == InstanceState::kFailed) up.push_back(i);
    }
    int64_t have = static_cast<int64_t>(up.size());
    for (int64_t n = have; n < desired; ++n) {
      if (now < obs.backoff_until) {  // backing off after failures or a replacement
        Due(obs.backoff_until);
        break;
      }
      int64_t restarts = 0;
      std::string reason = fmt::format("{} of {} instances", n, desired);
      if (!replacements.empty()) {
        restarts = replacements.back();
        replacements.pop_back();
        reason = fmt::format("replacement (restart {})", restarts);
      }
      env::Instance none;
      none.tenant = e.tenant;
      none.environment = e.name;
      Add(ActionKind::kStart, none, std::move(reason), restarts);
      // Instances started now were not among those judged: look again when their deadlines
      // and processes are known.
      Due(now + opts.resync_ms);
    }
    if (have <= desired) return;
    std::stable_sort(up.begin(), up.end(), [](const auto& a, const auto& b) {
      auto broken = [](const env::Instance& i) {
        return i.state == InstanceState::kFailed || i.state == InstanceState::kUnhealthy;
      };
      if (broken(a) != broken(b)) return broken(a);
      return a.created_at_ms > b.created_at_ms;  // newest first
    });
    for (int64_t n = have; n > desired; --n) {
      Add(ActionKind::kTerminate, up[static_cast<size_t>(have - n)],
          fmt::format("scaled down to {}", desired), desired);
    }
  }
};

}  // namespace

std::string_view Name(ActionKind k) {
  switch (k) {
    case ActionKind::kMarkUnhealthy:
      return "mark-unhealthy";
    case ActionKind::kFail:
      return "fail";
    case ActionKind::kReplace:
      return "replace";
    case ActionKind::kIdle:
      return "idle";
    case ActionKind::kStart:
      return "start";
    case ActionKind::kTerminate:
      return "terminate";
    case ActionKind::kSetGroupSize:
      return "set-group-size";
  }
  return "?";
}

int64_t BackoffAfter(int attempts) {
  return std::min<int64_t>(1000LL << std::clamp(attempts, 0, 8), 300000);
}

Plan PlanReconcile(const env::Environment& e, const std::vector<env::Instance>& instances,
                   const Observations& obs, int64_t now, const PlanOptions& options) {
  Planner p{e, obs, now, options, {}, {}, {}};
  p.Health(instances);
  if (obs.mode == Mode::kGroup) {
    if (obs.desired_changes_at) p.Due(*obs.desired_changes_at);
    p.GroupSize();
  } else if (obs.mode == Mode::kInstances) {
    p.Size();
  }
  // A plan with nothing to do is due in the future: planning again at once would plan the same.
  if (p.plan.actions.empty() && p.plan.due <= now) p.plan.due = now + options.resync_ms;
  return std::move(p.plan);
}

}  // namespace drover::fleet
