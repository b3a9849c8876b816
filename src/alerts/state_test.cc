#include "alerts/state.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace drover::alerts {
namespace {

struct Eval {
  int64_t at;
  bool active;
  Transition want;
  Phase phase;
};

void Walk(int64_t for_ms, const std::vector<Eval>& evals) {
  AlertState s;
  for (const auto& e : evals) {
    Transition t = Step(s, e.active, e.active ? 1 : 0, e.at, for_ms);
    EXPECT_EQ(TransitionName(t), TransitionName(e.want)) << "at " << e.at;
    EXPECT_EQ(PhaseName(s.phase), PhaseName(e.phase)) << "at " << e.at;
  }
}

TEST(AlertState, PendingForItsDurationThenFiringThenResolved) {
  Walk(300'000, {
                    {0, false, Transition::kNone, Phase::kInactive},
                    {60'000, true, Transition::kPending, Phase::kPending},
                    {120'000, true, Transition::kNone, Phase::kPending},
                    {359'999, true, Transition::kNone, Phase::kPending},
                    {360'000, true, Transition::kFiring, Phase::kFiring},
                    {420'000, true, Transition::kNone, Phase::kFiring},
                    {480'000, false, Transition::kResolved, Phase::kInactive},
                    {540'000, false, Transition::kNone, Phase::kInactive},
                });
}

TEST(AlertState, ABlipShorterThanForNeverFires) {
  Walk(300'000, {
                    {0, true, Transition::kPending, Phase::kPending},
                    {60'000, false, Transition::kCleared, Phase::kInactive},
                    {120'000, true, Transition::kPending, Phase::kPending},
                    {419'999, true, Transition::kNone, Phase::kPending},
                    {420'000, true, Transition::kFiring, Phase::kFiring},
                });
}

TEST(AlertState, ZeroForFiresAtOnce) {
  Walk(0, {
              {0, true, Transition::kFiring, Phase::kFiring},
              {1, false, Transition::kResolved, Phase::kInactive},
              {2, true, Transition::kFiring, Phase::kFiring},
          });
}

TEST(AlertState, TimesAndValueAreKept) {
  AlertState s;
  Step(s, true, 3.5, 1000, 500);
  Step(s, true, 4.5, 1600, 500);
  EXPECT_EQ(s.active_since_ms, 1000);
  EXPECT_EQ(s.fired_at_ms, 1600);
  EXPECT_DOUBLE_EQ(s.value, 4.5);
  Step(s, false, 0, 2000, 500);
  EXPECT_EQ(s.resolved_at_ms, 2000);
}

TEST(AlertState, Comparisons) {
  EXPECT_TRUE(Compare(Op::kGt, 1, 0));
  EXPECT_FALSE(Compare(Op::kGt, 0, 0));
  EXPECT_TRUE(Compare(Op::kGe, 0, 0));
  EXPECT_TRUE(Compare(Op::kLt, -1, 0));
  EXPECT_TRUE(Compare(Op::kLe, 0, 0));
  EXPECT_TRUE(Compare(Op::kEq, 2, 2));
  EXPECT_TRUE(Compare(Op::kNe, 2, 3));
}

}  // namespace
}  // namespace drover::alerts
