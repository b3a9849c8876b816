#include "schedule/schedules.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>

#include "testing/fake_clock.h"
#include "testing/store_fixture.h"

namespace drover::schedule {
namespace {

class SchedulesTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_, "s.db"));
    ASSERT_TRUE(store_);
    schedules_ = std::make_unique<ScheduleService>(*store_, clock_);
  }
  Schedule Make(const char* spec_json) {
    Schedule s;
    s.tenant = "t";
    s.name = "tick";
    auto spec = ParseScheduleDocument(boost::json::parse(spec_json), s.name);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    if (spec.ok()) s.spec = *spec;
    s.created_at_ms = 0;
    return s;
  }
  Result<Firing> Trigger(const Schedule& s) {
    std::promise<Result<Firing>> p;
    schedules_->RecordManual(s, "srv", [&](Result<Firing> f) { p.set_value(std::move(f)); });
    return p.get_future().get();
  }
  testing::TempDir dir_;
  testing::FakeClock clock_;  // stands still where the test puts it
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ScheduleService> schedules_;
};

DROVER_ON_ALL_BACKENDS(SchedulesTest);

TEST_P(SchedulesTest, AManualTriggerNeverTakesTheSchedulesOwnDueTime) {
  auto s = Make(R"({"cron": "* * * * * *", "action": {"type": "stop", "environment": "web"}})");
  const int64_t due = 1'795'000'000'000;  // a whole second: one of this schedule's fire times
  clock_.Set(FromUnixMillis(due));
  auto manual = Trigger(s);
  ASSERT_TRUE(manual.ok()) << manual.status().ToString();
  EXPECT_EQ(manual->due_ms, due + 1);
  EXPECT_EQ(manual->kind, "manual");

  // The scheduled firing of that second still records (and so runs).
  auto recorded = schedules_->Record({Firing{"t", "tick", due, 0, "schedule", "", "", "srv"}},
                                     /*lease=*/nullptr);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  ASSERT_EQ(recorded->size(), 1u);
  EXPECT_EQ((*recorded)[0].due_ms, due);

  // A second trigger in the same millisecond takes the next free one.
  auto again = Trigger(s);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->due_ms, due + 2);
}

TEST_P(SchedulesTest, AManualTriggerBetweenFireTimesIsDueWhenItWasMade) {
  auto s = Make(R"({"cron": "0 3 * * *", "action": {"type": "stop", "environment": "web"}})");
  const int64_t now = 1'795'000'000'123;
  clock_.Set(FromUnixMillis(now));
  auto manual = Trigger(s);
  ASSERT_TRUE(manual.ok());
  EXPECT_EQ(manual->due_ms, now);
  EXPECT_EQ(manual->fired_at_ms, now);
}

}  // namespace
}  // namespace drover::schedule
