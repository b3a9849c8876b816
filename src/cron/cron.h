#pragma once
// Cron expressions and their next fire time (docs/schedules.md): a pure function of (expression,
// zone, instant), no clock and no I/O besides the system tz database behind Zone.
//
//   5 fields    minute hour day-of-month month day-of-week
//   6 fields    second minute hour day-of-month month day-of-week  (seconds first, as Spring
//               and robfig/cron with seconds)
//   each field  *  ?  5  1-5  */15  10-50/20  3/10  1,15,20-25  names: jan-dec, sun-sat (0 and
//               7 are Sunday)
//   macros      @yearly @annually @monthly @weekly @daily @midnight @hourly
//               @every <duration>   (90s, 10m, "2 hours"): every duration from an anchor
//
// Day-of-month and day-of-week are OR'ed when both are restricted, AND'ed when either starts
// with `*` or `?` (as Vixie cron). In a zone with DST, a wall time skipped by a gap fires once
// at the first instant after the gap, and a wall time that occurs twice fires once, at its
// first occurrence.
#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace date {
class time_zone;
}

namespace drover::cron {

// A time zone of the system tz database ("UTC", "Europe/Berlin").
class Zone {
 public:
  static Result<Zone> Locate(std::string_view name);  // InvalidArgument for an unknown name
  static Zone Utc();
  const std::string& name() const { return name_; }
  const date::time_zone* tz() const { return tz_; }

 private:
  Zone(std::string name, const date::time_zone* tz) : name_(std::move(name)), tz_(tz) {}
  std::string name_;
  const date::time_zone* tz_;  // null: UTC
};

// `t` as the wall clock of `zone` shows it, with the zone's abbreviation:
// "2026-12-07 13:00:00 CET" (whole seconds).
std::string FormatInZone(TimePoint t, const Zone& zone);

class Cron {
 public:
  // InvalidArgument naming the field and why: "day-of-week: 8 is out of range 0-7".
  static Result<Cron> Parse(std::string_view expression);

  // The first fire time strictly after `after`. `anchor` is where @every counts from (a
  // schedule's creation); other expressions ignore it. nullopt only for an expression that
  // never fires (30 February).
  std::optional<TimePoint> Next(TimePoint after, const Zone& zone,
                                TimePoint anchor = TimePoint{}) const;

  // Whether `wall` (seconds of a local wall-clock time) matches the fields (not for @every).
  bool Matches(int64_t wall_seconds) const;
  bool every() const { return every_.count() > 0; }
  const std::string& expression() const { return expression_; }

 private:
  std::string expression_;
  std::chrono::milliseconds every_{0};
  std::bitset<60> seconds_, minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool day_star_ = false, weekday_star_ = false;
  bool DayMatches(int year, unsigned month, unsigned day, unsigned weekday) const;
  // The next wall time >= `from` (seconds of local time) that matches; nullopt past `limit`.
  std::optional<int64_t> NextWall(int64_t from, int64_t limit) const;
};

}  // namespace drover::cron
