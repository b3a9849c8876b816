#include "cron/cron.h"

#include <date/tz.h>
#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace drover::cron {
namespace {

TimePoint T(const char* rfc3339) { return *ParseRfc3339(rfc3339); }
// RFC 3339 to the second ("…T13:00:00Z").
std::string S(std::optional<TimePoint> t) {
  if (!t) return "never";
  std::string s = FormatRfc3339(*t);
  if (s.size() > 5 && s.ends_with(".000Z")) s = s.substr(0, s.size() - 5) + "Z";
  return s;
}

std::string NextOf(const char* expr, const char* zone, const char* after) {
  auto c = Cron::Parse(expr);
  EXPECT_TRUE(c.ok()) << expr << ": " << c.status().message();
  auto z = Zone::Locate(zone);
  EXPECT_TRUE(z.ok()) << zone;
  if (!c.ok() || !z.ok()) return "error";
  return S(c->Next(T(after), *z));
}

TEST(Cron, NextFireTimesInUtc) {
  EXPECT_EQ(NextOf("*/15 * * * *", "UTC", "2026-11-23T12:07:30Z"), "2026-11-23T12:15:00Z");
  EXPECT_EQ(NextOf("*/15 * * * *", "UTC", "2026-11-23T12:15:00Z"), "2026-11-23T12:30:00Z");
  // Weekdays at 13:00: from a Friday afternoon to Monday.
  EXPECT_EQ(NextOf("0 13 * * 1-5", "UTC", "2026-11-27T14:00:00Z"), "2026-11-30T13:00:00Z");
  EXPECT_EQ(NextOf("0 13 * * mon-fri", "UTC", "2026-11-27T12:59:59Z"), "2026-11-27T13:00:00Z");
  // Day-of-month and day-of-week both restricted: either (the 1st/15th, or a Monday).
  EXPECT_EQ(NextOf("0 0 1,15 * mon", "UTC", "2026-11-23T00:00:00Z"), "2026-11-30T00:00:00Z");
  EXPECT_EQ(NextOf("0 0 1,15 * mon", "UTC", "2026-11-30T00:00:00Z"), "2026-12-01T00:00:00Z");
  EXPECT_EQ(NextOf("0 0 13 * 5", "UTC", "2026-11-23T00:00:00Z"), "2026-11-27T00:00:00Z");
  // One of them starts with a star: both must match (the 1st, 11th, 21st or 31st that is a
  // Friday).
  EXPECT_EQ(NextOf("0 0 */10 * 5", "UTC", "2026-11-23T00:00:00Z"), "2026-12-11T00:00:00Z");
  EXPECT_EQ(NextOf("0 0 13 * *", "UTC", "2026-11-23T00:00:00Z"), "2026-12-13T00:00:00Z");
  EXPECT_EQ(NextOf("0 12 29 feb *", "UTC", "2026-11-23T00:00:00Z"), "2028-02-29T12:00:00Z");
  EXPECT_EQ(NextOf("@hourly", "UTC", "2026-11-23T12:00:00Z"), "2026-11-23T13:00:00Z");
  EXPECT_EQ(NextOf("@daily", "UTC", "2026-11-23T12:00:00Z"), "2026-11-24T00:00:00Z");
  EXPECT_EQ(NextOf("@weekly", "UTC", "2026-11-23T12:00:00Z"), "2026-11-29T00:00:00Z");
  EXPECT_EQ(NextOf("@monthly", "UTC", "2026-11-23T12:00:00Z"), "2026-12-01T00:00:00Z");
  EXPECT_EQ(NextOf("@yearly", "UTC", "2026-11-23T12:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(NextOf("0 0 * * 7", "UTC", "2026-11-23T12:00:00Z"), "2026-11-29T00:00:00Z");
  EXPECT_EQ(NextOf("3/20 * * * *", "UTC", "2026-11-23T12:44:00Z"), "2026-11-23T13:03:00Z");
  EXPECT_EQ(NextOf("10-50/20 9 * * *", "UTC", "2026-11-23T09:31:00Z"), "2026-11-23T09:50:00Z");
  // Seconds first with six fields.
  EXPECT_EQ(NextOf("*/20 * * * * *", "UTC", "2026-11-23T12:00:41Z"), "2026-11-23T12:01:00Z");
  EXPECT_EQ(NextOf("30 0 12 * * ?", "UTC", "2026-11-23T12:00:00Z"), "2026-11-23T12:00:30Z");
  EXPECT_EQ(NextOf("0 0 30 2 *", "UTC", "2026-11-23T00:00:00Z"), "never");
}

TEST(Cron, EveryCountsFromItsAnchor) {
  auto c = Cron::Parse("@every 10m");
  ASSERT_TRUE(c.ok());
  auto anchor = T("2026-11-23T12:03:00Z");
  EXPECT_EQ(S(c->Next(T("2026-11-23T12:03:00Z"), Zone::Utc(), anchor)), "2026-11-23T12:13:00Z");
  EXPECT_EQ(S(c->Next(T("2026-11-23T12:20:00Z"), Zone::Utc(), anchor)), "2026-11-23T12:23:00Z");
  EXPECT_EQ(S(c->Next(T("2026-11-23T11:00:00Z"), Zone::Utc(), anchor)), "2026-11-23T11:03:00Z");
  EXPECT_TRUE(Cron::Parse("@every 2 hours").ok());
}

// DST in Europe/Berlin, 2026: 29 March 02:00 CET -> 03:00 CEST (01:00Z); 25 October 03:00 CEST
// -> 02:00 CET (01:00Z).
TEST(Cron, BerlinAcrossBothTransitions) {
  const char* z = "Europe/Berlin";
  EXPECT_EQ(NextOf("0 13 * * 1-5", z, "2026-11-23T00:00:00Z"), "2026-11-23T12:00:00Z");
  EXPECT_EQ(NextOf("0 13 * * 1-5", z, "2026-07-01T00:00:00Z"), "2026-07-01T11:00:00Z");
  // 02:30 does not exist on 29 March: once, at the first instant after the gap.
  EXPECT_EQ(NextOf("30 2 * * *", z, "2026-03-28T12:00:00Z"), "2026-03-29T01:00:00Z");
  EXPECT_EQ(NextOf("30 2 * * *", z, "2026-03-29T01:00:00Z"), "2026-03-30T00:30:00Z");
  // Every 15 minutes through the gap: 01:45 CET, then 03:00 CEST once (not four times).
  EXPECT_EQ(NextOf("*/15 * * * *", z, "2026-03-29T00:45:00Z"), "2026-03-29T01:00:00Z");
  EXPECT_EQ(NextOf("*/15 * * * *", z, "2026-03-29T01:00:00Z"), "2026-03-29T01:15:00Z");
  // 02:30 happens twice on 25 October: at its first occurrence (CEST) only.
  EXPECT_EQ(NextOf("30 2 * * *", z, "2026-10-24T12:00:00Z"), "2026-10-25T00:30:00Z");
  EXPECT_EQ(NextOf("30 2 * * *", z, "2026-10-25T00:30:00Z"), "2026-10-26T01:30:00Z");
  // Every 30 minutes: 02:30 CEST, then the repeated hour is skipped, then 03:00 CET.
  EXPECT_EQ(NextOf("*/30 * * * *", z, "2026-10-25T00:30:00Z"), "2026-10-25T02:00:00Z");
}

// America/New_York, 2026: 8 March 02:00 EST -> 03:00 EDT (07:00Z); 1 November 02:00 EDT ->
// 01:00 EST (06:00Z).
TEST(Cron, NewYorkAcrossBothTransitions) {
  const char* z = "America/New_York";
  EXPECT_EQ(NextOf("0 2 * * *", z, "2026-03-07T12:00:00Z"), "2026-03-08T07:00:00Z");
  EXPECT_EQ(NextOf("0 2 * * *", z, "2026-03-08T07:00:00Z"), "2026-03-09T06:00:00Z");
  EXPECT_EQ(NextOf("30 1 * * *", z, "2026-10-31T12:00:00Z"), "2026-11-01T05:30:00Z");
  EXPECT_EQ(NextOf("30 1 * * *", z, "2026-11-01T05:30:00Z"), "2026-11-02T06:30:00Z");
}

// Australia/Lord_Howe has a 30-minute DST: 5 April 2026 02:00 (+11) -> 01:30 (+10:30);
// 4 October 2026 02:00 (+10:30) -> 02:30 (+11).
TEST(Cron, LordHoweThirtyMinuteDst) {
  const char* z = "Australia/Lord_Howe";
  EXPECT_EQ(NextOf("45 1 * * *", z, "2026-04-04T12:00:00Z"), "2026-04-04T14:45:00Z");
  EXPECT_EQ(NextOf("45 1 * * *", z, "2026-04-04T14:45:00Z"), "2026-04-05T15:15:00Z");
  EXPECT_EQ(NextOf("15 2 * * *", z, "2026-10-03T12:00:00Z"), "2026-10-03T15:30:00Z");
  EXPECT_EQ(NextOf("15 2 * * *", z, "2026-10-03T15:30:00Z"), "2026-10-04T15:15:00Z");
}

TEST(Cron, RejectedExpressionsNameTheField) {
  struct Case {
    const char* expr;
    const char* message;
  };
  for (const auto& c : std::vector<Case>{
           {"* * * *", "expected 5 fields"},
           {"* * * * * * *", "got 7"},
           {"61 * * * *", "minute: 61 is out of range 0-59"},
           {"* 24 * * *", "hour: 24 is out of range 0-23"},
           {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
           {"* * * 13 *", "month: 13 is out of range 1-12"},
           {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
           {"* * * foo *", "month: 'foo' is not a number or a name"},
           {"* * * * funday", "day-of-week: 'funday'"},
           {"*/0 * * * *", "minute: the step in '*/0'"},
           {"5-1 * * * *", "minute: the range 5-1 goes backwards"},
           {"1,,2 * * * *", "minute: an empty item"},
           {"? * * * *", "minute: '?' is only for"},
           {"@sometimes", "is not a macro"},
           {"@every soon", "@every: 'soon' is not a duration"},
           {"@every 10ms", "from 1s to 366d"},
           // Found by cron_fuzz: a century-long period overflowed the fire time.
           {"@every 36000d", "from 1s to 366d"},
       }) {
    auto r = Cron::Parse(c.expr);
    ASSERT_FALSE(r.ok()) << c.expr;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos)
        << c.expr << " -> " << r.status().message();
  }
  EXPECT_FALSE(Zone::Locate("Mars/Olympus").ok());
  EXPECT_NE(Zone::Locate("Mars/Olympus").status().message().find("Mars/Olympus"),
            std::string::npos);
}

// The reference: walk UTC forward in steps; fire at an instant whose wall time matches (unless
// it is the second occurrence of a repeated wall time), and at the first instant after a gap
// when a skipped wall time matched.
std::vector<int64_t> BruteForce(const Cron& cron, const Zone& zone, int64_t from, int64_t to,
                                int64_t step) {
  std::vector<int64_t> fires;
  const date::time_zone* tz = zone.tz();
  date::sys_info info{};
  bool have = false;
  for (int64_t t = from; t < to; t += step) {
    date::sys_seconds st{std::chrono::seconds{t}};
    if (tz && (!have || st >= info.end)) {
      info = tz->get_info(st);
      have = true;
    }
    int64_t offset = tz ? info.offset.count() : 0;
    int64_t wall = t + offset;
    bool fire = false;
    if (cron.Matches(wall)) {
      fire = true;
      if (tz) {
        auto li = tz->get_info(date::local_seconds{std::chrono::seconds{wall}});
        if (li.result == date::local_info::ambiguous && t == wall - li.second.offset.count()) {
          fire = false;  // the second occurrence
        }
      }
    }
    if (tz && st == info.begin) {
      auto prev = tz->get_info(st - std::chrono::seconds{1});
      for (int64_t w = t + prev.offset.count(); w < wall; w += step) {
        if (cron.Matches(w)) fire = true;  // a skipped wall time
      }
    }
    if (fire) fires.push_back(t);
  }
  return fires;
}

void CheckAgainstBruteForce(const char* expr, const char* zone_name, int64_t from, int64_t to,
                            int64_t step, int samples) {
  auto cron = Cron::Parse(expr);
  ASSERT_TRUE(cron.ok()) << expr;
  auto zone = Zone::Locate(zone_name);
  ASSERT_TRUE(zone.ok());
  auto fires = BruteForce(*cron, *zone, from, to, step);
  ASSERT_FALSE(fires.empty()) << expr << " in " << zone_name;
  std::mt19937_64 rng(42);
  std::vector<int64_t> afters;
  for (int i = 0; i < samples; ++i) {
    afters.push_back(from + static_cast<int64_t>(rng() % static_cast<uint64_t>(to - from)));
  }
  for (size_t i = 0; i < fires.size(); i += 1 + fires.size() / 500) {
    afters.push_back(fires[i]);      // exactly at a fire: the next one
    afters.push_back(fires[i] - 1);  // just before: this one
  }
  for (int64_t after : afters) {
    auto it = std::upper_bound(fires.begin(), fires.end(), after);
    auto got = cron->Next(FromUnixMillis(after * 1000 + 500 * (after % 2)), *zone);
    if (it == fires.end()) {
      EXPECT_TRUE(!got || ToUnixMillis(*got) / 1000 >= to - step) << expr;
      continue;
    }
    // Odd samples are half a second later: fires are whole seconds, so the answer is the same.
    ASSERT_TRUE(got.has_value()) << expr << " " << zone_name << " after " << after;
    ASSERT_EQ(ToUnixMillis(*got) / 1000, *it)
        << expr << " in " << zone_name << " after " << S(FromUnixMillis(after * 1000)) << ": got "
        << S(got) << ", brute force " << S(FromUnixMillis(*it * 1000));
  }
}

TEST(Cron, MatchesABruteForceReferenceOverTwoYearsInFourZones) {
  const int64_t from = ToUnixMillis(T("2026-01-01T00:00:00Z")) / 1000;
  const int64_t to = ToUnixMillis(T("2028-01-01T00:00:00Z")) / 1000;
  for (const char* zone : {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"}) {
    for (const char* expr :
         {"*/15 * * * *", "30 2 * * *", "0 13 * * 1-5", "45 1 * * *", "0 0 1,15 * mon",
          "5 */2 * * *", "15,45 2 * * sun", "*/7 1-3 * 3,4,10,11 *"}) {
      CheckAgainstBruteForce(expr, zone, from, to, 60, 300);
    }
  }
}

TEST(Cron, SecondsMatchABruteForceReferenceAroundTransitions) {
  for (auto [zone, day] : std::vector<std::pair<const char*, const char*>>{
           {"Europe/Berlin", "2026-03-28T12:00:00Z"},
           {"Europe/Berlin", "2026-10-24T12:00:00Z"},
           {"Australia/Lord_Howe", "2026-10-03T00:00:00Z"}}) {
    int64_t from = ToUnixMillis(T(day)) / 1000;
    CheckAgainstBruteForce("*/20 * 1-3 * * *", zone, from, from + 2 * 86400, 1, 300);
  }
}

}  // namespace
}  // namespace drover::cron
