#include "schedule/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <future>

#include "testing/faulty_store.h"
#include "testing/store_fixture.h"

namespace drover::schedule {
namespace {

// Stop() waits a bounded time for actions under way. One that completes after the scheduler is
// gone must find the state its callbacks use still alive (they hold it), not freed memory:
// under AddressSanitizer the old code (callbacks holding a raw pointer) fails here.
TEST(Scheduler, AnActionFinishingAfterStopGaveUpIsStillRecorded) {
  testing::TempDir dir;
  auto real = testing::OpenTestStore(dir);
  ASSERT_TRUE(real);
  testing::FaultyStore store(*real);
  auth::KeyService keys(store, SystemClock::Get());
  env::Services envs(store, SystemClock::Get(), keys);
  ScheduleService schedules(store, SystemClock::Get());
  coord::Coordinator coord(store, {"srv", std::chrono::seconds(10), {}, {}, {}});
  Schedule s;
  s.tenant = "t";
  s.name = "stop-web";
  auto spec = ParseScheduleDocument(
      boost::json::parse(R"({"cron":"@daily","action":{"type":"stop","environment":"web"}})"),
      s.name);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  s.spec = *spec;
  {
    SchedulerOptions options;
    options.server_id = "srv";
    options.instance_retention = std::chrono::milliseconds(100);
    Scheduler scheduler(schedules, envs, coord, store, options);
    scheduler.Start();
    store.hold_after = 1;  // the trigger's record is written; the action's write is held
    std::promise<Result<Firing>> recorded;
    scheduler.Trigger(s, [&](Result<Firing> f) { recorded.set_value(std::move(f)); });
    auto f = recorded.get_future().get();
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE(testing::WaitFor([&] { return store.held() == 1; })) << "the action is under way";
    scheduler.Stop();  // gives up after 100 ms
  }                    // the scheduler is gone; its action is not finished
  // The action completes now, and its outcome is recorded through the same (kept) state.
  std::string status;
  ASSERT_TRUE(testing::WaitFor([&] {
    store.ReleaseWrites();
    auto page = schedules.Firings("t", "stop-web", "", 10);
    status = page.ok() && !page->items.empty() ? page->items[0].status : "";
    return status != "" && status != "pending";
  })) << status;
  EXPECT_EQ(status, "failed") << "no environment 'web': the stop action fails, and says so";
  store.hold_after = -1;
}

// The leader's built-in cleanup also runs the tasks other parts hand it (the change log's
// retention, wired by the app with --audit-retention).
TEST(Scheduler, TheLeadersCleanupRunsTheCleanupTasks) {
  testing::TempDir dir;
  auto store = testing::OpenTestStore(dir);
  ASSERT_TRUE(store);
  auth::KeyService keys(*store, SystemClock::Get());
  env::Services envs(*store, SystemClock::Get(), keys);
  ScheduleService schedules(*store, SystemClock::Get());
  coord::Coordinator coord(*store, {"srv", std::chrono::seconds(10), {}, {}, {}});
  std::atomic<int> ran{0};
  SchedulerOptions options;
  options.server_id = "srv";
  options.cleanup_tasks.push_back([&] {
    ++ran;
    return Status::Ok();
  });
  Scheduler scheduler(schedules, envs, coord, *store, options);
  coord.Start();
  scheduler.Start();
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        scheduler.Poke();  // the leader lease may come after the first look
        return ran > 0;
      },
      60000));
  scheduler.Stop();
  coord.Stop();
}

}  // namespace
}  // namespace drover::schedule
