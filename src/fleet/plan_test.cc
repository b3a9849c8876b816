#include "fleet/plan.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace drover::fleet {
namespace {

using env::InstanceState;

constexpr int64_t kNow = 1'000'000'000;  // database ms
constexpr int64_t kMin = 60'000;

env::Environment Env(int64_t capacity = 2) {
  env::Environment e;
  e.tenant = "t";
  e.name = "web";
  e.spec.provider = "local";
  e.spec.capacity = std::to_string(capacity);
  e.spec.health.heartbeat_interval = std::chrono::seconds(5);  // grace 15 s
  e.spec.health.unhealthy_after = 3;
  e.updated_at_ms = kNow - 60 * kMin;
  return e;
}

// An instance created `age` ms ago, last heard from `silent` ms ago.
env::Instance Inst(std::string id, InstanceState state, int64_t age, int64_t silent = 0) {
  env::Instance i;
  i.id = std::move(id);
  i.tenant = "t";
  i.environment = "web";
  i.state = state;
  i.created_at_ms = kNow - age;
  i.updated_at_ms = kNow - age;
  i.last_heartbeat_ms = kNow - silent;
  i.provider_id = "p-" + i.id;
  return i;
}

Observations Obs(int64_t desired, Mode mode = Mode::kInstances) {
  Observations o;
  o.mode = mode;
  o.desired = desired;
  return o;
}

// The actions as "kind instance (number)" lines, easy to compare in a table.
std::vector<std::string> Lines(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& a : p.actions) {
    std::string line(Name(a.kind));
    if (!a.instance.id.empty()) line += " " + a.instance.id;
    if (a.kind == ActionKind::kStart || a.kind == ActionKind::kSetGroupSize) {
      line += fmt::format(" ({})", a.number);
    }
    out.push_back(line);
  }
  return out;
}

using Lines_ = std::vector<std::string>;

struct Case {
  std::string name;
  env::Environment env;
  std::vector<env::Instance> instances;
  Observations obs;
  Lines_ want;
  int64_t want_due;  // kNever: only a change makes a difference
};

class PlanTable : public ::testing::TestWithParam<Case> {};

TEST_P(PlanTable, Plans) {
  const Case& c = GetParam();
  Plan p = PlanReconcile(c.env, c.instances, c.obs, kNow);
  EXPECT_EQ(Lines(p), c.want);
  EXPECT_EQ(p.due, c.want_due);
}

env::Environment WithRestart(std::string policy, int64_t max = 10) {
  auto e = Env(1);
  e.spec.health.restart = std::move(policy);
  e.spec.health.max_restarts = max;
  return e;
}

env::Instance Unhealthy(std::string id, int64_t restarts, int64_t since, int64_t age = 5 * kMin) {
  auto i = Inst(std::move(id), InstanceState::kUnhealthy, age, 5 * kMin);
  i.restarts = restarts;
  i.updated_at_ms = kNow - since;
  i.state_reason = "no heartbeat for 20s";
  return i;
}

env::Instance Cron(std::string id, int64_t interval, int64_t last_run_ago) {
  auto i = Inst(std::move(id), InstanceState::kRunning, 60 * kMin, 59 * kMin);
  i.run_mode = "once";
  i.run_interval_ms = interval;
  i.last_run = env::LastRun{1, "abc", "ok", 0, 1000, kNow - last_run_ago};
  return i;
}

const int64_t kResync = 1000;
// A healthy instance heard from just now is looked at when its heartbeat deadline passes:
// grace 15 s + the heartbeat buffer's flush 1 s, after its last heartbeat.
const int64_t kHealthyDue = kNow + 16'001;

INSTANTIATE_TEST_SUITE_P(
    Fleet, PlanTable,
    ::testing::Values(
        Case{"UpFromZeroStartsTheMissing", Env(3), {}, Obs(3),
             Lines_{"start (0)", "start (0)", "start (0)"}, kNow + kResync},
        Case{"AtSizeDoesNothing",
             Env(2),
             {Inst("a", InstanceState::kRunning, kMin), Inst("b", InstanceState::kRunning, kMin)},
             Obs(2),
             {},
             kHealthyDue},
        Case{"DownTerminatesNewestFirst",
             Env(1),
             {Inst("old", InstanceState::kRunning, 3 * kMin),
              Inst("mid", InstanceState::kRunning, 2 * kMin),
              Inst("new", InstanceState::kRunning, kMin)},
             Obs(1),
             Lines_{"terminate new", "terminate mid"},
             kHealthyDue},
        Case{"DownTerminatesFailedFirst",
             Env(1),
             {Inst("old", InstanceState::kRunning, 3 * kMin),
              Inst("bad", InstanceState::kFailed, 4 * kMin),
              Inst("new", InstanceState::kRunning, kMin)},
             Obs(1),
             Lines_{"terminate bad", "terminate new"},
             kHealthyDue},
        Case{"FailedKeepsItsPlace",
             Env(2),
             {Inst("a", InstanceState::kRunning, kMin), Inst("bad", InstanceState::kFailed, kMin)},
             Obs(2),
             {},
             kHealthyDue},
        Case{"MissedHeartbeatsMakeItUnhealthyAndReplaceIt",
             Env(1),
             {Inst("a", InstanceState::kRunning, 5 * kMin, 17'000)},
             Obs(1),
             Lines_{"mark-unhealthy a", "replace a", "start (1)"},
             kNow + kResync},
        Case{"WithinTheGraceNothingHappensUntilItsDeadline",
             Env(1),
             {Inst("a", InstanceState::kRunning, 5 * kMin, 15'000)},
             Obs(1),
             {},
             kNow - 15'000 + 16'001},
        Case{"AStartingAgentGetsStartUpTimeForItsFirstHeartbeat",
             Env(1),
             {[] {
               auto i = Inst("a", InstanceState::kStarting, 40'000);
               i.last_heartbeat_ms.reset();
               return i;
             }()},
             Obs(1),
             {},
             kNow - 40'000 + 46'001},
        Case{"AProcessTheProviderSawExitIsUnhealthyAtOnce",
             Env(1),
             {Inst("a", InstanceState::kRunning, 5 * kMin)},
             [] {
               auto o = Obs(1);
               o.alive["a"] = false;
               return o;
             }(),
             Lines_{"mark-unhealthy a", "replace a", "start (1)"},
             kNow + kResync},
        Case{"AWatchedProcessIsLookedAtEveryResync",
             Env(1),
             {Inst("a", InstanceState::kRunning, 5 * kMin)},
             [] {
               auto o = Obs(1);
               o.alive["a"] = true;
               return o;
             }(),
             {},
             kNow + kResync},
        Case{"GoneFromTheProvidersListIsLost",
             Env(1),
             {Inst("a", InstanceState::kRunning, 5 * kMin)},
             [] {
               auto o = Obs(1);
               o.listed = std::set<std::string>{"p-other"};
               return o;
             }(),
             Lines_{"mark-unhealthy a", "replace a", "start (1)"},
             kNow + kResync},
        Case{"NewInstancesMissingFromTheListGetTime",
             Env(1),
             {Inst("a", InstanceState::kStarting, 2'000)},
             [] {
               auto o = Obs(1);
               o.listed = std::set<std::string>{};
               return o;
             }(),
             {},
             kNow - 2'000 + 15'001},
        Case{"ListedInstancesAreFine",
             Env(1),
             {Inst("a", InstanceState::kRunning, 5 * kMin)},
             [] {
               auto o = Obs(1);
               o.listed = std::set<std::string>{"p-a"};
               return o;
             }(),
             {},
             kHealthyDue},
        Case{"AFailedListJudgesNothing",
             Env(1),
             {Inst("a", InstanceState::kRunning, 5 * kMin)},
             Obs(1),  // listed nullopt
             {},
             kHealthyDue},
        Case{"RestartNeverFailsIt",
             WithRestart("never"),
             {Inst("a", InstanceState::kRunning, 5 * kMin, 20'000)},
             Obs(1),
             Lines_{"mark-unhealthy a", "fail a"},
             kNever},
        Case{"MaxRestartsReachedFailsIt",
             WithRestart("always", 3),
             {Unhealthy("a", 3, 100'000)},
             Obs(1),
             Lines_{"fail a"},
             kNever},
        Case{"BackoffHoldsTheReplacement",
             WithRestart("always", 10),
             {Unhealthy("a", 3, 1'000)},  // the third restart waits 4 s
             Obs(1),
             {},
             kNow - 1'000 + 4'000},
        Case{"AfterTheBackoffItIsReplacedWithOneMoreRestart",
             WithRestart("on-failure", 10),
             {Unhealthy("a", 3, 4'000)},
             Obs(1),
             Lines_{"replace a", "start (4)"},
             kNow + kResync},
        Case{"ALongLivedInstanceStartsAFreshCount",
             WithRestart("always", 3),
             {Unhealthy("a", 3, 1'000, 30 * kMin)},
             Obs(1),
             Lines_{"replace a", "start (1)"},
             kNow + kResync},
        Case{"StartBackoffAfterFailedStarts",
             Env(2),
             {},
             [] {
               auto o = Obs(2);
               o.backoff_until = kNow + 8'000;
               return o;
             }(),
             {},
             kNow + 8'000},
        Case{"IdleScalesToZero",
             [] {
               auto e = Env(2);
               e.spec.idle_timeout = std::chrono::minutes(10);
               e.updated_at_ms = kNow - 20 * kMin;
               return e;
             }(),
             {Inst("a", InstanceState::kRunning, 20 * kMin),
              Inst("b", InstanceState::kRunning, 19 * kMin)},
             Obs(2),
             Lines_{"idle", "terminate b", "terminate a"},
             kHealthyDue},
        Case{"ARecentRunKeepsItAwake",
             [] {
               auto e = Env(1);
               e.spec.idle_timeout = std::chrono::minutes(10);
               e.updated_at_ms = kNow - 20 * kMin;
               return e;
             }(),
             {[] {
               auto i = Inst("a", InstanceState::kRunning, 20 * kMin);
               i.last_run = env::LastRun{1, "abc", "ok", 0, 1000, kNow - kMin};
               return i;
             }()},
             Obs(1),
             {},
             kHealthyDue},
        Case{"ProxiedTrafficKeepsItAwake",  // the gateway's touch: active_at
             [] {
               auto e = Env(1);
               e.spec.idle_timeout = std::chrono::minutes(10);
               e.updated_at_ms = kNow - 20 * kMin;
               e.active_at_ms = kNow - kMin;
               return e;
             }(),
             {Inst("a", InstanceState::kRunning, 20 * kMin)},
             Obs(1),
             {},
             kHealthyDue},
        Case{"AWindowBeginningLaterIsDue",
             Env(1),
             {Inst("a", InstanceState::kRunning, kMin)},
             [] {
               auto o = Obs(1);
               o.desired_changes_at = kNow + 5'000;
               return o;
             }(),
             {},
             kNow + 5'000},
        Case{"AnIdlePlanIsNeverDueAtOnce",  // a hold's change time already past
             Env(1),
             {Inst("a", InstanceState::kRunning, kMin)},
             [] {
               auto o = Obs(1);
               o.desired_changes_at = kNow - 5'000;
               return o;
             }(),
             {},
             kNow + kResync},
        Case{"ACapacityMapLeavingTheGroupAloneDoesNothing",
             Env(1),
             {Inst("a", InstanceState::kRunning, kMin), Inst("b", InstanceState::kRunning, kMin)},
             [] {
               auto o = Obs(1);
               o.desired.reset();
               return o;
             }(),
             {},
             kHealthyDue},
        Case{"StaticStartsNothingAndReplacesNothing",
             Env(3),
             {Inst("a", InstanceState::kRunning, 5 * kMin, 20'000)},
             Obs(3, Mode::kJoin),
             Lines_{"mark-unhealthy a"},
             kNever},
        Case{"GroupModeSetsTheSizeOnce",
             Env(4),
             {},
             Obs(4, Mode::kGroup),
             Lines_{"set-group-size (4)"},
             kNever},
        Case{"GroupModeAlreadyApplied",
             Env(4),
             {},
             [] {
               auto o = Obs(4, Mode::kGroup);
               o.applied_group_size = 4;
               return o;
             }(),
             {},
             kNever},
        Case{"GroupModeBacksOff",
             Env(4),
             {},
             [] {
               auto o = Obs(4, Mode::kGroup);
               o.backoff_until = kNow + 2'000;
               return o;
             }(),
             {},
             kNow + 2'000},
        Case{"ACronAgentIsJudgedByItsLastRun",
             Env(1),
             {Cron("a", 10 * kMin, 5 * kMin)},
             Obs(1),
             {},
             kNow - 5 * kMin + 30 * kMin + kMin + 1},
        Case{"ACronAgentMissingRunsIsUnhealthy",
             Env(1),
             {Cron("a", 10 * kMin, 32 * kMin)},
             Obs(1),
             Lines_{"mark-unhealthy a", "replace a", "start (1)"},
             kNow + kResync}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// Reasons say why, in words an operator reads in `drover env events`.
TEST(Plan, ReasonsSayWhy) {
  auto p =
      PlanReconcile(Env(1), {Inst("a", InstanceState::kRunning, 5 * kMin, 20'000)}, Obs(1), kNow);
  ASSERT_EQ(p.actions.size(), 3u);
  EXPECT_EQ(p.actions[0].reason, "no heartbeat for 20s");
  EXPECT_EQ(p.actions[1].reason, "replaced: no heartbeat for 20s");
  EXPECT_EQ(p.actions[1].instance.state, InstanceState::kUnhealthy) << "moves from unhealthy";
  EXPECT_EQ(p.actions[2].reason, "replacement (restart 1)");
  ASSERT_EQ(p.deadline_lags.size(), 1u);
  EXPECT_DOUBLE_EQ(p.deadline_lags[0], 4.0);  // 20 s silent, 16 s allowed

  auto down = PlanReconcile(Env(0), {Inst("a", InstanceState::kRunning, kMin)}, Obs(0), kNow);
  ASSERT_EQ(down.actions.size(), 1u);
  EXPECT_EQ(down.actions[0].reason, "scaled down to 0");
  EXPECT_EQ(down.actions[0].number, 0);
}

// Planning is pure: the same inputs give the same plan, and a plan applied (its instances as
// the actions leave them) plans nothing more.
TEST(Plan, IsLevelTriggered) {
  auto e = Env(2);
  std::vector<env::Instance> before{Inst("a", InstanceState::kRunning, 3 * kMin),
                                    Inst("b", InstanceState::kRunning, 2 * kMin),
                                    Inst("c", InstanceState::kRunning, kMin)};
  auto p1 = PlanReconcile(e, before, Obs(2), kNow);
  auto p2 = PlanReconcile(e, before, Obs(2), kNow);
  EXPECT_EQ(Lines(p1), Lines(p2));
  ASSERT_EQ(Lines(p1), (Lines_{"terminate c"}));
  before.pop_back();
  EXPECT_TRUE(PlanReconcile(e, before, Obs(2), kNow).actions.empty());
}

TEST(Plan, BackoffGrowsToFiveMinutes) {
  EXPECT_EQ(BackoffAfter(1), 2000);
  EXPECT_EQ(BackoffAfter(2), 4000);
  EXPECT_EQ(BackoffAfter(8), 256000);
  EXPECT_EQ(BackoffAfter(30), 256000);
  EXPECT_LE(BackoffAfter(100), 300000);
}

}  // namespace
}  // namespace drover::fleet
