#include <gtest/gtest.h>

#include <future>

#include "env/services.h"
#include "testing/store_fixture.h"

namespace drover::env {
namespace {

// The instance lifecycle's ends, on both backends: what a terminated, left or forgotten instance
// keeps (nothing that still works) and when it goes for good.
class InstancesTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    store_ = testing::OpenStoreAt(testing::NewStoreUrl(GetParam(), dir_));
    ASSERT_TRUE(store_);
    keys_ = std::make_unique<auth::KeyService>(*store_, SystemClock::Get());
    svc_ = std::make_unique<Services>(*store_, SystemClock::Get(), *keys_);
  }
  void TearDown() override {
    svc_->instances.Stop();
    store_->Close();
  }
  Environment Put(const std::string& name, const std::string& provider) {
    EnvironmentSpec spec;
    spec.provider = provider;
    spec.capacity = "1";
    std::promise<Result<std::pair<Environment, Written>>> p;
    svc_->environments.Put("t", name, spec, [&](auto r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->first : Environment{};
  }
  Joined Join(const Environment& e) {
    std::promise<Result<Joined>> p;
    svc_->instances.Join(e.name, e.join_token, "box", "{}", "",
                         [&](auto r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Joined{};
  }
  Instance Get(const std::string& id) {
    http::Principal admin;
    admin.key_id = "k";
    admin.role = http::Role::kAdmin;
    admin.tenant = "t";
    auto i = svc_->instances.InstanceFor(admin, id);
    EXPECT_TRUE(i.ok()) << i.status().ToString();
    return i.ok() ? *i : Instance{};
  }
  Status Wait(std::function<void(std::function<void(Status)>)> call) {
    std::promise<Status> p;
    call([&](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<auth::KeyService> keys_;
  std::unique_ptr<Services> svc_;
};
DROVER_ON_ALL_BACKENDS(InstancesTest);

// A terminated instance's agent key stops working (it used to keep reading its variables).
TEST_P(InstancesTest, TerminatingAnInstanceRevokesItsAgentKey) {
  auto e = Put("web", "static");
  auto j = Join(e);
  ASSERT_TRUE(keys_->Authenticate(j.agent_key).ok());
  auto inst = Get(j.instance_id);
  auto moved = svc_->instances.Transition(inst, InstanceState::kTerminating, "terminating",
                                          "scaling down", nullptr);
  ASSERT_TRUE(moved.ok() && *moved);
  inst.state = InstanceState::kTerminating;
  ASSERT_TRUE(keys_->Authenticate(j.agent_key).ok()) << "still stopping: it may report";
  moved = svc_->instances.Transition(inst, InstanceState::kTerminated, "terminated", "scaled down",
                                     nullptr);
  ASSERT_TRUE(moved.ok() && *moved);
  EXPECT_TRUE(testing::WaitFor([&] {
    return keys_->Authenticate(j.agent_key).status().code() == Status::Code::kUnauthenticated;
  }));
}

TEST_P(InstancesTest, LeavingTerminatesOnceAndForgettingFollowsTheProvider) {
  auto e = Put("web", "static");
  auto j = Join(e);
  ASSERT_TRUE(
      Wait([&](auto done) { svc_->instances.Leave(Get(j.instance_id), "left: bye", done); }).ok());
  auto left = Get(j.instance_id);
  EXPECT_EQ(left.state, InstanceState::kTerminated);
  EXPECT_EQ(left.state_reason, "left: bye");
  EXPECT_EQ(keys_->Authenticate(j.agent_key).status().code(), Status::Code::kUnauthenticated);
  // Again: nothing new (no second event).
  ASSERT_TRUE(Wait([&](auto done) { svc_->instances.Leave(left, "left: again", done); }).ok());
  EXPECT_EQ(Get(j.instance_id).state_reason, "left: bye");
  auto all = svc_->instances.Instances("t", "web", true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
  EXPECT_TRUE(svc_->instances.Instances("t", "web")->empty())
      << "terminated: only with `terminated`";

  // A live instance a provider started is not forgotten behind the controller's back; a static
  // one is (its agent joins anew if it still runs).
  auto local = Put("mine", "local");
  auto lj = Join(local);
  auto refused = Wait([&](auto done) { svc_->instances.Forget(Get(lj.instance_id), done); });
  EXPECT_EQ(refused.code(), Status::Code::kConflict) << refused.ToString();
  auto live_static = Join(e);
  EXPECT_TRUE(
      Wait([&](auto done) { svc_->instances.Forget(Get(live_static.instance_id), done); }).ok());
  EXPECT_EQ(keys_->Authenticate(live_static.agent_key).status().code(),
            Status::Code::kUnauthenticated);
  EXPECT_TRUE(Wait([&](auto done) { svc_->instances.Forget(left, done); }).ok());
  EXPECT_TRUE(svc_->instances.Instances("t", "web", true)->empty());
}

// The controller terminating an instance stops its agent, which then leaves: the controller's
// own reason stands (scaled down, replaced), and the key goes at once.
TEST_P(InstancesTest, AnAgentLeavingWhileTheControllerTerminatesItKeepsTheControllersReason) {
  auto e = Put("web", "static");
  auto j = Join(e);
  auto inst = Get(j.instance_id);
  ASSERT_TRUE(*svc_->instances.Transition(inst, InstanceState::kTerminating, "terminating",
                                          "scaling down", nullptr));
  ASSERT_TRUE(
      Wait([&](auto done) { svc_->instances.Leave(Get(j.instance_id), "left: bye", done); }).ok());
  auto after = Get(j.instance_id);
  EXPECT_EQ(after.state, InstanceState::kTerminating);
  EXPECT_EQ(after.state_reason, "scaling down");
  EXPECT_EQ(keys_->Authenticate(j.agent_key).status().code(), Status::Code::kUnauthenticated);
}

TEST_P(InstancesTest, TerminatedInstancesArePrunedAfterTheirRetention) {
  auto e = Put("web", "static");
  auto old = Join(e);
  auto live = Join(e);
  ASSERT_TRUE(
      Wait([&](auto done) { svc_->instances.Leave(Get(old.instance_id), "left", done); }).ok());
  auto kept = svc_->instances.PruneTerminated(3600 * 1000);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, 0) << "left just now: within the retention";
  auto pruned = svc_->instances.PruneTerminated(-1);  // everything terminated before now + 1 ms
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(*pruned, 1);
  auto all = svc_->instances.Instances("t", "web", true);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, live.instance_id) << "live instances are never pruned";
}

}  // namespace
}  // namespace drover::env
