// Schedules end to end: real servers, real time with short periods (@every 1s), the fleet's
// environments as the actions' targets.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <thread>

#include "common/clock.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::TestServer;
using testing::WaitFor;

boost::json::value Json(const std::string& s) { return boost::json::parse(s); }

class ScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start());
    auto r = Do("PUT", "/v1/environments/sim", R"({"provider":"static","capacity":1})");
    ASSERT_EQ(r.first, 201) << r.second;
  }
  std::pair<int, std::string> Do(const std::string& method, const std::string& path,
                                 const std::string& body = "") {
    auto r = server_.NewClient().Do(method, path, body);
    if (!r.ok()) return {0, r.status().message()};
    return {r->status, r->body};
  }
  // The environment's capacity in force (its scale override, else the spec's).
  std::string Capacity() {
    auto r = Do("GET", "/v1/environments/sim");
    if (r.first != 200) return "";
    auto v = Json(r.second);
    const auto& st = v.at("status").as_object();
    if (const auto* d = st.if_contains("desired"); d && !d->is_null()) {
      return boost::json::serialize(*d);
    }
    return "";
  }
  boost::json::array Firings(const std::string& name) {
    auto r = Do("GET", "/v1/schedules/" + name + "/firings?limit=1000");
    if (r.first != 200) return {};
    auto v = Json(r.second);
    return v.at("items").as_array();
  }
  int Count(const boost::json::array& firings, const std::string& kind) {
    int n = 0;
    for (const auto& f : firings) n += f.at("kind").as_string() == kind;
    return n;
  }

  TestServer server_;
};

TEST_F(ScheduleTest, ACronScheduleScalesTheEnvironmentAndRecordsEachFiring) {
  auto put =
      Do("PUT", "/v1/schedules/grow",
         R"({"cron":"@every 1s","action":{"type":"scale","environment":"sim","capacity":4}})");
  ASSERT_EQ(put.first, 201) << put.second;
  auto next = Json(put.second).at("status").at("next_fires").as_array();
  ASSERT_EQ(next.size(), 5u);
  auto t0 = ParseRfc3339(next[0].as_string());
  auto t1 = ParseRfc3339(next[1].as_string());
  ASSERT_TRUE(t0 && t1);
  EXPECT_EQ(ToUnixMillis(*t1) - ToUnixMillis(*t0), 1000);
  ASSERT_TRUE(WaitFor([&] { return Capacity() == "4"; }, 30000)) << Capacity() << server_.Log();
  ASSERT_TRUE(WaitFor([&] { return Firings("grow").size() >= 3; }, 30000));
  auto firings = Firings("grow");
  for (const auto& f : firings) {
    if (f.at("status").as_string() == "pending") continue;  // the newest may be running
    EXPECT_EQ(f.at("status").as_string(), "ok") << boost::json::serialize(f);
    EXPECT_EQ(f.at("result").as_string(), "sim scaled to 4");
  }
  // Newest first, each due time once.
  for (size_t i = 1; i < firings.size(); ++i) {
    EXPECT_GT(firings[i - 1].at("due").as_string(), firings[i].at("due").as_string());
  }
  auto got = Json(Do("GET", "/v1/schedules/grow").second);
  EXPECT_FALSE(got.at("status").at("last_firing").is_null());
  EXPECT_EQ(Do("DELETE", "/v1/schedules/grow").first, 204);
  EXPECT_EQ(Do("GET", "/v1/schedules/grow").first, 404);
  EXPECT_EQ(Do("GET", "/v1/schedules/grow/firings").first, 404);
}

TEST_F(ScheduleTest, TriggerFiresTheActionNowAsAManualFiring) {
  ASSERT_EQ(Do("PUT", "/v1/schedules/stopper",
               R"({"cron":"0 3 1 1 *","timezone":"Europe/Berlin",
                   "action":{"type":"scale","environment":"sim","capacity":7}})")
                .first,
            201);
  auto t = Do("POST", "/v1/schedules/stopper/trigger");
  ASSERT_EQ(t.first, 202) << t.second;
  EXPECT_EQ(Json(t.second).at("kind").as_string(), "manual");
  ASSERT_TRUE(WaitFor([&] { return Capacity() == "7"; }, 30000)) << server_.Log();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto f = Firings("stopper");
        return f.size() == 1 && f[0].at("status").as_string() == "ok";
      },
      30000));
  // A stop action scales to 0.
  ASSERT_EQ(Do("PUT", "/v1/schedules/stopper",
               R"({"cron":"0 3 1 1 *","action":{"type":"stop","environment":"sim"}})")
                .first,
            200);
  ASSERT_EQ(Do("POST", "/v1/schedules/stopper/trigger").first, 202);
  ASSERT_TRUE(WaitFor([&] { return Capacity() == "0"; }, 30000));
  // Triggering a schedule whose environment is gone is a failed firing with the reason.
  ASSERT_EQ(Do("PUT", "/v1/schedules/orphan",
               R"({"cron":"0 3 1 1 *","action":{"type":"stop","environment":"nowhere"}})")
                .first,
            201);
  ASSERT_EQ(Do("POST", "/v1/schedules/orphan/trigger").first, 202);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto f = Firings("orphan");
        return f.size() == 1 && f[0].at("status").as_string() == "failed";
      },
      30000));
  EXPECT_NE(Firings("orphan")[0].at("result").as_string().find("nowhere"), std::string::npos);
}

// A trigger is recorded before it is acknowledged: killed right after the 202, the server
// restarts with the firing there, and its action is finished (here, or by the recovery of
// pending firings).
TEST_F(ScheduleTest, AnAcknowledgedTriggerSurvivesAKill) {
  server_.KeepPort();
  ASSERT_EQ(Do("PUT", "/v1/schedules/now",
               R"({"cron":"@yearly","action":{"type":"scale","environment":"sim","capacity":6}})")
                .first,
            201);
  auto t = Do("POST", "/v1/schedules/now/trigger");
  ASSERT_EQ(t.first, 202) << t.second;
  server_.Kill();
  ASSERT_TRUE(server_.Start());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto f = Firings("now");
        return f.size() == 1 && f[0].at("status").as_string() == "ok";
      },
      60000))
      << boost::json::serialize(Firings("now"));
  EXPECT_EQ(Firings("now")[0].at("due").as_string(), Json(t.second).at("due").as_string());
  EXPECT_EQ(Capacity(), "6");
}

TEST_F(ScheduleTest, AFiringMissedWhileTheServerWasDownFiresOnceOnRestart) {
  server_.KeepPort();
  for (const char* name : {"catchup", "nocatchup"}) {
    std::string body = std::string(R"({"cron":"@every 2s","catch_up":)") +
                       (std::string(name) == "catchup" ? "true" : "false") +
                       R"(,"action":{"type":"scale","environment":"sim","capacity":2}})";
    ASSERT_EQ(Do("PUT", std::string("/v1/schedules/") + name, body).first, 201);
  }
  ASSERT_TRUE(WaitFor([&] { return Firings("catchup").size() >= 1; }, 30000));
  ASSERT_EQ(server_.Stop(), 0);
  std::this_thread::sleep_for(std::chrono::seconds(7));  // three or four due times pass
  ASSERT_TRUE(server_.Start());
  ASSERT_TRUE(WaitFor([&] { return Count(Firings("catchup"), "schedule") >= 2; }, 30000));
  EXPECT_EQ(Count(Firings("catchup"), "catch-up"), 1) << boost::json::serialize(Firings("catchup"));
  ASSERT_TRUE(WaitFor([&] { return Count(Firings("nocatchup"), "schedule") >= 2; }, 30000));
  EXPECT_EQ(Count(Firings("nocatchup"), "catch-up"), 0);
}

TEST_F(ScheduleTest, BadSchedulesGetProblemsWithTheField) {
  auto r = Do("PUT", "/v1/schedules/bad",
              R"({"cron":"0 25 * * *","action":{"type":"scale","environment":"sim"}})");
  EXPECT_EQ(r.first, 422);
  EXPECT_NE(r.second.find("spec.cron"), std::string::npos) << r.second;
  EXPECT_NE(r.second.find("hour: 25 is out of range"), std::string::npos) << r.second;
  EXPECT_NE(r.second.find("spec.action.capacity"), std::string::npos) << r.second;
  r = Do("PUT", "/v1/schedules/wf",
         R"({"cron":"@daily","action":{"type":"start_workflow","workflow":"Nightly!"}})");
  EXPECT_EQ(r.first, 422);
  EXPECT_NE(r.second.find("spec.action.workflow"), std::string::npos) << r.second;
  EXPECT_EQ(Do("PUT", "/v1/schedules/Bad%20Name", R"({"cron":"@daily"})").first, 400);
  EXPECT_EQ(Do("PUT", "/v1/schedules/x", "[1,2]").first, 400);
  EXPECT_EQ(Do("POST", "/v1/schedules/none/trigger").first, 404);
  EXPECT_EQ(Do("GET", "/v1/schedules/none/firings?cursor=zz").first, 404);
  EXPECT_EQ(Do("GET", "/healthz").first, 200);
}

// Windows are levels the fleet controller holds: local agents start when one opens and go when
// it closes; a server restarted mid-window keeps the window's capacity.
TEST(ScheduleWindow, TheControllerHoldsAWindowsCapacityWhileItIsOpen) {
  TestServer server({"--local-instances", "stop"});
  ASSERT_TRUE(server.Start());
  server.KeepPort();
  auto c = [&] { return server.NewClient(); };
  ASSERT_EQ(c().Do("PUT", "/v1/environments/web",
                   R"({"provider":"local","capacity":0,"health":{"heartbeat_interval":"1s"}})")
                ->status,
            201);
  auto running = [&] {
    auto r = c().Do("GET", "/v1/environments/web");
    if (!r.ok() || r->status != 200) return std::string("?");
    auto v = Json(r->body);
    return boost::json::serialize(v.at("status").at("running")) + "/" +
           boost::json::serialize(v.at("status").at("desired")) + " " +
           std::string(v.at("status").at("desired_from").as_string());
  };
  auto now = SystemClock::Get().Now();
  std::string body = R"({"window":{"environment":"web","start":")" +
                     FormatRfc3339(now - std::chrono::minutes(1)) + R"(","stop":")" +
                     FormatRfc3339(now + std::chrono::minutes(10)) + R"(","capacity":2}})";
  auto put = c().Do("PUT", "/v1/schedules/busy", body);
  ASSERT_EQ(put->status, 201) << put->body;
  EXPECT_TRUE(Json(put->body).at("status").at("window_open").as_bool());
  ASSERT_TRUE(WaitFor([&] { return running() == "2/2 window busy"; }, 60000)) << running();
  ASSERT_EQ(server.Stop(), 0);
  ASSERT_TRUE(server.Start());
  ASSERT_TRUE(WaitFor([&] { return running() == "2/2 window busy"; }, 60000)) << running();
  // A window that opens by itself at its start and closes at its stop.
  ASSERT_EQ(c().Do("DELETE", "/v1/schedules/busy")->status, 204);
  ASSERT_TRUE(WaitFor([&] { return running() == "0/0 spec"; }, 60000)) << running();
  auto soon = SystemClock::Get().Now();
  body = R"({"window":{"environment":"web","start":")" +
         FormatRfc3339(soon + std::chrono::seconds(2)) + R"(","stop":")" +
         FormatRfc3339(soon + std::chrono::seconds(15)) + R"(","capacity":1}})";
  ASSERT_EQ(c().Do("PUT", "/v1/schedules/later", body)->status, 201);
  ASSERT_TRUE(WaitFor([&] { return running() == "1/1 window later"; }, 60000)) << running();
  ASSERT_TRUE(WaitFor([&] { return running() == "0/0 spec"; }, 60000)) << running();
  // Closing one early (the stop moved to now) brings the spec's capacity back too.
  ASSERT_EQ(c().Do("PUT", "/v1/schedules/busy",
                   R"({"window":{"environment":"web","start":")" +
                       FormatRfc3339(now - std::chrono::minutes(1)) + R"(","stop":")" +
                       FormatRfc3339(now + std::chrono::minutes(10)) + R"(","capacity":2}})")
                ->status,
            201);
  ASSERT_TRUE(WaitFor([&] { return running() == "2/2 window busy"; }, 60000)) << running();
  body = R"({"window":{"environment":"web","start":")" +
         FormatRfc3339(now - std::chrono::minutes(1)) + R"(","stop":")" +
         FormatRfc3339(SystemClock::Get().Now() + std::chrono::seconds(2)) + R"(","capacity":2}})";
  ASSERT_EQ(c().Do("PUT", "/v1/schedules/busy", body)->status, 200);
  ASSERT_TRUE(WaitFor([&] { return running() == "0/0 spec"; }, 60000)) << running();
  EXPECT_EQ(server.Stop(), 0);
}

// The watcher's cc-w-* variables: a built-in window per environment.
TEST_F(ScheduleTest, WatcherVariablesSetTheDesiredCapacityAndItsSource) {
  auto put = [&](const char* key, const std::string& value) {
    auto r = Do("PUT", std::string("/v1/variables/") + key,
                R"({"environment":"sim","value":")" + value + R"("})");
    ASSERT_TRUE(r.first == 200 || r.first == 201) << key << ": " << r.second;
  };
  auto status = [&] {
    auto v = Json(Do("GET", "/v1/environments/sim").second);
    return boost::json::serialize(v.at("status").at("desired")) + " " +
           std::string(v.at("status").at("desired_from").as_string());
  };
  EXPECT_EQ(status(), "1 spec");
  auto now = SystemClock::Get().Now();
  put("cc-w-a-desired-capacity", "5");
  put("cc-w-a-start", FormatRfc3339(now - std::chrono::minutes(1)));
  put("cc-w-a-start-offset", "30s");  // started 30 s ago
  ASSERT_TRUE(WaitFor([&] { return status().starts_with("5 watcher (cc-w-a-start"); }, 30000))
      << status();
  put("cc-w-a-stop", FormatRfc3339(SystemClock::Get().Now() + std::chrono::seconds(2)));
  ASSERT_TRUE(WaitFor([&] { return status().starts_with("0 watcher (cc-w-a-stop"); }, 30000))
      << status();
  // A start after the passed stop opens the next window.
  put("cc-w-a-start-offset", "-");
  put("cc-w-a-start", FormatRfc3339(SystemClock::Get().Now() + std::chrono::seconds(1)));
  ASSERT_TRUE(WaitFor([&] { return status().starts_with("5 watcher (cc-w-a-start"); }, 30000))
      << status();
  auto bad = Do("PUT", "/v1/variables/cc-w-scheduler", R"({"value":"*/10 * * *"})");
  EXPECT_EQ(bad.first, 422);
  EXPECT_NE(bad.second.find("expected 5 fields"), std::string::npos) << bad.second;
  EXPECT_EQ(Do("PUT", "/v1/variables/cc-w-scheduler", R"({"value":"*/5 * * * *"})").first, 201);
}

// The cleanup action (also run by the built-in cleanup every minute) keeps the newest
// --keep-firings firings of each schedule.
TEST(ScheduleCleanup, KeepsTheNewestFiringsOfEachSchedule) {
  TestServer server({"--keep-firings", "3"});
  ASSERT_TRUE(server.Start());
  auto c = server.NewClient();
  ASSERT_EQ(c.Do("PUT", "/v1/environments/sim", R"({"provider":"static","capacity":1})")->status,
            201);
  ASSERT_EQ(
      c.Do("PUT", "/v1/schedules/often",
           R"({"cron":"@every 1s","action":{"type":"scale","environment":"sim","capacity":1}})")
          ->status,
      201);
  ASSERT_EQ(c.Do("PUT", "/v1/schedules/tidy", R"({"cron":"@yearly","action":{"type":"cleanup"}})")
                ->status,
            201);
  auto count = [&] {
    auto r = c.Do("GET", "/v1/schedules/often/firings?limit=1000");
    return Json(r->body).at("items").as_array().size();
  };
  ASSERT_TRUE(WaitFor([&] { return count() >= 6; }, 30000)) << count();
  ASSERT_EQ(c.Do("PUT", "/v1/schedules/often",
                 R"({"cron":"@yearly","action":{"type":"scale","environment":"sim","capacity":1}})")
                ->status,
            200);  // no more firings
  ASSERT_EQ(c.Do("POST", "/v1/schedules/tidy/trigger")->status, 202);
  ASSERT_TRUE(WaitFor([&] { return count() == 3; }, 30000)) << count();
}

}  // namespace
}  // namespace drover
