// The controller's executor against a real store and coordinator, with a fake provider that
// records every call: what the planner decides reaches the provider and the store, on both
// backends. (End-to-end runs with real agents are in tests/fleet_test.cc.)
#include "fleet/controller.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <future>
#include <mutex>
#include <thread>

#include "testing/store_fixture.h"

namespace drover::fleet {
namespace {

using env::InstanceState;

// Stands in for `local`: starts nothing, remembers what it was asked, and answers Alive from a
// table the test sets.
class FakeProvider final : public Provider {
 public:
  std::string_view Name() const override { return "local"; }
  Mode ModeFor(const env::Environment&) const override { return Mode::kInstances; }
  Result<Started> Create(const env::Environment& e, const std::string& id) override {
    std::lock_guard lock(mu_);
    calls_.push_back("create " + e.name + " " + id);
    if (fail_creates_ > 0) {
      --fail_creates_;
      return Status::Unavailable("no capacity in the fake cloud");
    }
    alive_[id] = true;
    return Started{"fake-" + id, "127.0.0.1:1", "{}"};
  }
  Status Delete(const env::Environment& e, const env::Instance& inst) override {
    std::lock_guard lock(mu_);
    EXPECT_EQ(inst.provider_id, "fake-" + inst.id) << "deletes what it started";
    calls_.push_back("delete " + e.name + " " + inst.id);
    alive_.erase(inst.id);
    return Status::Ok();
  }
  std::optional<bool> Alive(const env::Environment&, const env::Instance& inst) override {
    std::lock_guard lock(mu_);
    auto it = alive_.find(inst.id);
    return it == alive_.end() ? false : it->second;
  }
  void SetOnChange(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    on_change_ = std::move(fn);
  }
  // The process of `id` exits.
  void Exit(const std::string& id) {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      alive_[id] = false;
      fn = on_change_;
    }
    if (fn) fn();
  }
  void FailCreates(int n) {
    std::lock_guard lock(mu_);
    fail_creates_ = n;
  }
  int Count(const std::string& prefix) {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& c : calls_) n += c.starts_with(prefix);
    return n;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> calls_;
  std::map<std::string, bool> alive_;
  std::function<void()> on_change_;
  int fail_creates_ = 0;
};

class ControllerTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_));
    ASSERT_TRUE(store_);
    keys_ = std::make_unique<auth::KeyService>(*store_, SystemClock::Get());
    svc_ = std::make_unique<env::Services>(*store_, SystemClock::Get(), *keys_);
    coord_ = std::make_unique<coord::Coordinator>(
        *store_, coord::CoordinatorOptions{"srv",
                                           std::chrono::seconds(10),
                                           {},
                                           [this](const store::Lease&) {
                                             if (auto* c = ctl_.load()) c->Poke();
                                           },
                                           {}});
    ControllerOptions o;
    o.local.data_dir = dir_.path();
    o.providers.enabled = {"local"};
    o.extra_providers.push_back(fake_);
    controller_ = std::make_unique<Controller>(*store_, *svc_, *coord_, std::move(o));
    ctl_ = controller_.get();
    coord_->Start();
    controller_->Start();
  }
  void TearDown() override {
    ctl_ = nullptr;
    controller_->Stop();
    coord_->Stop();
    svc_->instances.Stop();
    store_->Close();
  }
  void Put(const std::string& capacity, const std::string& health = "{}") {
    auto doc = boost::json::parse(R"({"provider":"local","capacity":)" + capacity +
                                  R"(,"health":)" + health + "}");
    auto spec = env::ParseEnvironmentDocument(doc, "web");
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    std::promise<Status> p;
    svc_->environments.Put("t", "web", *spec, [&](auto r) { p.set_value(r.status()); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  std::vector<env::Instance> Live() {
    std::vector<env::Instance> out;
    auto all = svc_->instances.Instances("t", "web");
    if (all.ok()) {
      for (auto& i : *all) {
        if (env::IsLive(i.state)) out.push_back(std::move(i));
      }
    }
    return out;
  }
  std::vector<std::string> EventKinds() {
    std::vector<std::string> out;
    auto page = svc_->events.Events("t", "web", "", 1000);
    if (page.ok()) {
      for (const auto& e : page->items) out.push_back(e.kind);
    }
    return out;
  }
  int CountEvents(const std::string& kind) {
    auto kinds = EventKinds();
    return static_cast<int>(std::count(kinds.begin(), kinds.end(), kind));
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::KeyService> keys_;
  std::unique_ptr<env::Services> svc_;
  std::unique_ptr<coord::Coordinator> coord_;
  std::shared_ptr<FakeProvider> fake_ = std::make_shared<FakeProvider>();
  std::unique_ptr<Controller> controller_;
  std::atomic<Controller*> ctl_{nullptr};
};
DROVER_ON_ALL_BACKENDS(ControllerTest);

TEST_P(ControllerTest, StartsTheMissingThroughTheProviderAndRecordsWhatItSaid) {
  Put("2");
  // Each row is written before the provider is asked: wait for both.
  ASSERT_TRUE(
      testing::WaitFor([&] { return Live().size() == 2 && fake_->Count("create web i-") == 2; }));
  for (const auto& i : Live()) {
    EXPECT_EQ(i.state, InstanceState::kStarting);
    EXPECT_TRUE(testing::WaitFor([&] {
      auto now = svc_->instances.Instances("t", "web");
      for (const auto& j : *now) {
        if (j.id == i.id) return j.provider_id == "fake-" + i.id;
      }
      return false;
    }));
  }
  EXPECT_EQ(fake_->Count("delete"), 0);
}

TEST_P(ControllerTest, AProcessThatExitsIsReplacedWithOneMoreRestart) {
  Put("1");
  ASSERT_TRUE(testing::WaitFor([&] { return Live().size() == 1 && fake_->Count("create") == 1; }));
  std::string first = Live()[0].id;
  fake_->Exit(first);
  // The replacement's row is written before the provider is asked: wait for both.
  ASSERT_TRUE(testing::WaitFor([&] {
    auto live = Live();
    return live.size() == 1 && live[0].id != first && fake_->Count("create") == 2;
  }));
  EXPECT_EQ(Live()[0].restarts, 1);
  EXPECT_EQ(fake_->Count("delete web " + first), 1);
  EXPECT_GE(CountEvents("unhealthy"), 1);
  EXPECT_GE(CountEvents("replacing"), 1);
}

TEST_P(ControllerTest, ScalingDownDeletesThroughTheProvider) {
  Put("3");
  ASSERT_TRUE(testing::WaitFor([&] { return Live().size() == 3; }));
  std::promise<Status> p;
  svc_->environments.Scale("t", "web", "1", [&](auto r) { p.set_value(r.status()); });
  ASSERT_TRUE(p.get_future().get().ok());
  // An instance is deleted through the provider before its row says terminated: wait for both.
  ASSERT_TRUE(testing::WaitFor([&] {
    return Live().size() == 1 && fake_->Count("delete") == 2 && CountEvents("terminated") == 2;
  }));
  EXPECT_EQ(fake_->Count("delete"), 2) << "no instance is deleted twice";
}

TEST_P(ControllerTest, AFailedStartIsRecordedAndBackedOff) {
  fake_->FailCreates(1);
  Put("1");
  // The failed one is recorded; the next attempt waits for the backoff (2 s), then succeeds.
  ASSERT_TRUE(testing::WaitFor([&] { return CountEvents("start-failed") == 1; }));
  ASSERT_TRUE(testing::WaitFor([&] {
    auto live = Live();
    return live.size() == 1 && fake_->Count("create") == 2;
  }));
  auto all = svc_->instances.Instances("t", "web", /*terminated=*/true);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].state, InstanceState::kTerminated) << "a start that failed holds no place";
  EXPECT_NE((*all)[0].state_reason.find("no capacity in the fake cloud"), std::string::npos)
      << (*all)[0].state_reason;
}

// A row no plan can move (a state no version wrote reads as failed, and its terminate never
// applies) makes every plan find the world moved: the controller backs off instead of
// re-planning every millisecond, and keeps serving the environment's real changes.
TEST_P(ControllerTest, ARowNoPlanCanMoveDoesNotSpinTheController) {
  Put("0");
  ASSERT_TRUE(store::WriteSync(*store_, [](store::Tx& tx) {
                return tx
                    .Exec(
                        "INSERT INTO instances (id, tenant, environment, state, hostname,"
                        " address, provider_id, facts, agent_version, skipped_runs, restarts,"
                        " last_run_seq, created_at, updated_at) VALUES ('i-damaged', 't', 'web',"
                        " 'bogus', '', '', 'fake-i-damaged', '{}', '', 0, 0, 0, 1, 1)")
                    .status();
              }).ok());
  controller_->Poke();
  auto reconciles = [&] {
    std::string out;
    controller_->RenderMetrics(out);
    constexpr std::string_view kSample = "\ndrover_fleet_reconciles_total ";
    auto at = out.find(kSample);
    return at == std::string::npos ? -1 : std::stol(out.substr(at + kSample.size()));
  };
  ASSERT_TRUE(testing::WaitFor([&] { return reconciles() >= 3; })) << "it tried";
  long before = reconciles();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  // Backing off (100 ms doubling), a handful; spinning at 1 ms, a thousand or more.
  EXPECT_LT(reconciles() - before, 100);
  // Real changes still go through at once.
  std::promise<Status> p;
  svc_->environments.Scale("t", "web", "2", [&](auto r) { p.set_value(r.status()); });
  ASSERT_TRUE(p.get_future().get().ok());
  EXPECT_TRUE(testing::WaitFor([&] { return fake_->Count("create") >= 1; }));
}

}  // namespace
}  // namespace drover::fleet
