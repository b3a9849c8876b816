#include "schedule/spec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace drover::schedule {
namespace {

TimePoint T(const char* s) { return *ParseRfc3339(s); }

Result<ScheduleSpec> Parse(const char* json) {
  return ParseScheduleDocument(boost::json::parse(json), "nightly");
}

std::string Errors(const char* json) {
  auto r = Parse(json);
  EXPECT_FALSE(r.ok()) << json;
  std::string out;
  for (const auto& e : r.status().errors()) out += e.field + ": " + e.message + "\n";
  return out;
}

TEST(ScheduleSpec, CronWithZoneAndOffsetFiresAtTheShiftedTimes) {
  auto s = Parse(R"({"kind":"Schedule","name":"nightly","spec":{"cron":"0 13 * * 1-5",
      "timezone":"Europe/Berlin","offset":"3m",
      "action":{"type":"scale","environment":"sim","capacity":3}}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto next = NextFire(*s, T("2026-11-23T00:00:00Z"), T("2026-11-01T00:00:00Z"));
  EXPECT_EQ(FormatRfc3339(*next), "2026-11-23T12:03:00.000Z");
  // Just before the shifted time, and exactly at it.
  EXPECT_EQ(FormatRfc3339(*NextFire(*s, T("2026-11-23T12:02:59Z"), {})),
            "2026-11-23T12:03:00.000Z");
  EXPECT_EQ(FormatRfc3339(*NextFire(*s, T("2026-11-23T12:03:00Z"), {})),
            "2026-11-24T12:03:00.000Z");
  auto canonical = boost::json::parse(SpecToJson(*s));
  EXPECT_EQ(canonical.at("timezone").as_string(), "Europe/Berlin");
  EXPECT_EQ(canonical.at("offset").as_string(), "3m");
  EXPECT_EQ(canonical.at("catch_up").as_bool(), true);
  auto again = ParseScheduleDocument(canonical, "nightly");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(SpecToJson(*again), SpecToJson(*s));
}

TEST(ScheduleSpec, StartWorkflowKeepsItsInputThroughTheCanonicalForm) {
  auto s = Parse(R"({"cron":"0 2 * * *","action":{"type":"start_workflow","workflow":"nightly",)"
                 R"("input":{"region":"eu","n":3}}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->action.workflow, "nightly");
  EXPECT_EQ(s->action.input_json, R"({"region":"eu","n":3})");
  auto again = ParseScheduleDocument(boost::json::parse(SpecToJson(*s)), "nightly");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->action.input_json, s->action.input_json);
}

TEST(ScheduleSpec, AtFiresOnceWithItsOffset) {
  auto s = Parse(
      R"({"at":"2026-12-01T13:00:00Z","offset":"-5m","action":{"type":"stop","environment":"e"}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(FormatRfc3339(*NextFire(*s, T("2026-11-23T00:00:00Z"), {})),
            "2026-12-01T12:55:00.000Z");
  EXPECT_FALSE(NextFire(*s, T("2026-12-01T12:55:00Z"), {}).has_value());
}

TEST(ScheduleSpec, BadDocumentsGetAnErrorPerField) {
  EXPECT_NE(Errors(R"({"action":{"type":"cleanup"}})").find("spec.cron: give one of cron, at"),
            std::string::npos);
  EXPECT_NE(Errors(R"({"cron":"@daily","at":"2026-12-01T13:00:00Z","action":{"type":"cleanup"}})")
                .find("give only one"),
            std::string::npos);
  auto e = Errors(R"({"cron":"61 * * * *","timezone":"Mars/Base","offset":"soon",
      "action":{"type":"scale","environment":"Bad Name"}})");
  EXPECT_NE(e.find("spec.cron: minute: 61 is out of range 0-59"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.timezone: 'Mars/Base'"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.offset"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.action.environment"), std::string::npos) << e;
  EXPECT_NE(e.find("spec.action.capacity"), std::string::npos) << e;
  EXPECT_NE(Errors(R"({"cron":"@daily","action":{"type":"start_workflow"}})")
                .find("spec.action.workflow: is required"),
            std::string::npos);
  EXPECT_NE(Errors(R"({"cron":"@daily","action":{"type":"start_workflow","workflow":"W"}})")
                .find("spec.action.workflow: must match"),
            std::string::npos);
  EXPECT_NE(Errors(R"({"cron":"@daily","action":{"type":"reboot"}})").find("must be one of"),
            std::string::npos);
  EXPECT_NE(Errors(R"({"cron":"@daily","action":{"type":"cleanup"},"colour":"red"})")
                .find("spec.colour: unknown field"),
            std::string::npos);
  EXPECT_NE(Errors(R"({"kind":"Schedule","name":"other","spec":{"cron":"@daily",
      "action":{"type":"cleanup"}}})")
                .find("name: 'other' does not match"),
            std::string::npos);
  EXPECT_NE(Errors(R"({"window":{"environment":"e","start":"0 13 * * *","capacity":3}})")
                .find("spec.window.stop: give stop"),
            std::string::npos);
}

TEST(ScheduleSpec, WindowsOpenBetweenStartAndStop) {
  auto s = Parse(R"({"timezone":"Europe/Berlin","window":{"environment":"sim",
      "start":"0 13 * * 1-5","stop":"0 19 * * 1-5","capacity":3}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto& w = *s->window;
  auto at = [&](const char* t) { return WindowAt(w, s->zone, T(t), {}); };
  EXPECT_FALSE(at("2026-11-23T11:59:00Z").open);  // Monday 12:59 Berlin
  EXPECT_EQ(FormatRfc3339(*at("2026-11-23T11:59:00Z").next_change), "2026-11-23T12:00:00.000Z");
  EXPECT_TRUE(at("2026-11-23T12:00:00Z").open);
  EXPECT_EQ(FormatRfc3339(*at("2026-11-23T12:00:00Z").next_change), "2026-11-23T18:00:00.000Z");
  EXPECT_FALSE(at("2026-11-23T18:00:00Z").open);
  EXPECT_FALSE(at("2026-11-28T14:00:00Z").open);  // Saturday
  auto d = Parse(R"({"window":{"environment":"sim","start":"2026-12-01T13:00:00Z",
      "duration":"6h","capacity":2,"offset":"-1h"}})");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(WindowAt(*d->window, d->zone, T("2026-12-01T11:59:59Z"), {}).open);
  EXPECT_TRUE(WindowAt(*d->window, d->zone, T("2026-12-01T12:00:00Z"), {}).open);
  EXPECT_EQ(
      FormatRfc3339(*WindowAt(*d->window, d->zone, T("2026-12-01T12:00:00Z"), {}).next_change),
      "2026-12-01T18:00:00.000Z");
  EXPECT_FALSE(WindowAt(*d->window, d->zone, T("2026-12-01T18:00:00Z"), {}).open);
  auto ts = Parse(R"({"window":{"environment":"sim","start":"2026-12-01T13:00:00Z",
      "stop":"0 19 * * *","capacity":2}})");
  ASSERT_TRUE(ts.ok());
  EXPECT_FALSE(WindowAt(*ts->window, ts->zone, T("2026-11-30T15:00:00Z"), {}).open)
      << "not before its fixed start";
  EXPECT_TRUE(WindowAt(*ts->window, ts->zone, T("2026-12-01T15:00:00Z"), {}).open);
  EXPECT_FALSE(WindowAt(*ts->window, ts->zone, T("2026-12-01T19:00:00Z"), {}).open);
}

}  // namespace
}  // namespace drover::schedule

namespace drover::schedule {
namespace {

// A per-second cron missed for 28 hours (about 100,000 due times): catch-up fires once, for the
// latest missed second, and then goes on from now (the old 100,000-step search stopped short and
// the stale due time fired again every few milliseconds through the whole backlog).
TEST(ScheduleSpec, CatchUpFiresOnceForTheLatestMissedTimeHoweverLongTheGap) {
  auto s = ParseScheduleDocument(
      boost::json::parse(R"({"cron":"* * * * * *","action":{"type":"cleanup"}})"), "s");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  TimePoint created = T("2026-11-01T00:00:00Z");
  TimePoint last = T("2026-11-02T00:00:00Z");
  TimePoint now = T("2026-11-03T04:00:00.500Z");  // 28 h later
  auto due = NextDue(*s, last, created, now);
  ASSERT_TRUE(due.has_value());
  EXPECT_TRUE(due->catch_up);
  EXPECT_EQ(FormatRfc3339(due->at), "2026-11-03T04:00:00.000Z");
  // Fired: the next is ahead, not the next missed second.
  auto after = NextDue(*s, due->at, created, now);
  ASSERT_TRUE(after.has_value());
  EXPECT_FALSE(after->catch_up);
  EXPECT_EQ(FormatRfc3339(after->at), "2026-11-03T04:00:01.000Z");
  // Without catch_up the missed times are skipped.
  s->catch_up = false;
  auto skip = NextDue(*s, last, created, now);
  EXPECT_FALSE(skip->catch_up);
  EXPECT_EQ(FormatRfc3339(skip->at), "2026-11-03T04:00:01.000Z");
}

TEST(ScheduleSpec, NextDueOfSparseAndOneShotSchedules) {
  auto monthly = ParseScheduleDocument(
      boost::json::parse(R"({"cron":"0 3 1 * *","action":{"type":"cleanup"}})"), "m");
  ASSERT_TRUE(monthly.ok());
  TimePoint created = T("2024-01-15T00:00:00Z");
  // Missed for years: the latest first-of-month 03:00 before now.
  auto due = NextDue(*monthly, std::nullopt, created, T("2026-11-20T10:00:00Z"));
  ASSERT_TRUE(due && due->catch_up);
  EXPECT_EQ(FormatRfc3339(due->at), "2026-11-01T03:00:00.000Z");
  // On time: not a catch-up.
  auto on_time = NextDue(*monthly, T("2026-11-01T03:00:00Z"), created, T("2026-11-20T10:00:00Z"));
  EXPECT_FALSE(on_time->catch_up);
  EXPECT_EQ(FormatRfc3339(on_time->at), "2026-12-01T03:00:00.000Z");
  auto at = ParseScheduleDocument(
      boost::json::parse(R"({"at":"2026-12-01T13:00:00Z","action":{"type":"cleanup"}})"), "a");
  ASSERT_TRUE(at.ok());
  auto missed = NextDue(*at, std::nullopt, created, T("2026-12-02T00:00:00Z"));
  ASSERT_TRUE(missed && missed->catch_up);
  EXPECT_FALSE(NextDue(*at, missed->at, created, T("2026-12-02T00:00:00Z")).has_value());
}

}  // namespace
}  // namespace drover::schedule
