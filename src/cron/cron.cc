#include "cron/cron.h"

#include <date/tz.h>
#include <fmt/format.h>

#include <array>
#include <cctype>
#include <vector>

#include "common/duration.h"

namespace drover::cron {
namespace {

constexpr int64_t kDay = 86400;
// How far ahead a fire time is searched for (an expression that matches nothing, such as
// 30 February, gives up here).
constexpr int64_t kHorizon = 30LL * 366 * kDay;
// 2199-12-31T23:59:59Z: fire times end there (a TimePoint counts nanoseconds and ends in 2262).
constexpr int64_t kLatestMillis = 7258118399000;

struct FieldDef {
  const char* name;
  int lo, hi;
  std::array<const char*, 12> names;  // names[i] is value (name_base + i)
  int name_base;
  bool question_ok;  // `?` allowed (day-of-month, day-of-week)
};

const FieldDef kSecond{"second", 0, 59, {}, 0, false};
const FieldDef kMinute{"minute", 0, 59, {}, 0, false};
const FieldDef kHour{"hour", 0, 23, {}, 0, false};
const FieldDef kDay_{"day-of-month", 1, 31, {}, 0, true};
const FieldDef kMonth{
    "month", 1,
    12,      {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"},
    1,       false};
const FieldDef kWeekday{"day-of-week", 0, 7, {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}, 0,
                        true};

Result<int> Value(const FieldDef& f, std::string_view s) {
  if (s.empty()) return Status::InvalidArgument(fmt::format("{}: a value is missing", f.name));
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    int v = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1000) {
        return Status::InvalidArgument(fmt::format("{}: '{}' is not a number", f.name, s));
      }
      v = v * 10 + (c - '0');
    }
    if (v < f.lo || v > f.hi) {
      return Status::InvalidArgument(
          fmt::format("{}: {} is out of range {}-{}", f.name, v, f.lo, f.hi));
    }
    return v;
  }
  if (s.size() == 3) {
    for (size_t i = 0; i < f.names.size() && f.names[i]; ++i) {
      bool same = true;
      for (size_t k = 0; k < 3; ++k) {
        same = same && std::tolower(static_cast<unsigned char>(s[k])) == f.names[i][k];
      }
      if (same) return static_cast<int>(i) + f.name_base;
    }
  }
  return Status::InvalidArgument(fmt::format(
      "{}: '{}' is not a number{}", f.name, s,
      f.names[0] ? fmt::format(" or a name ({}, {} ...)", f.names[0], f.names[1]) : ""));
}

// One field into `bits` (bit v set for each value v); `star` when it starts with * or ?.
Status ParseField(const FieldDef& f, std::string_view text, std::vector<bool>& bits, bool& star) {
  bits.assign(static_cast<size_t>(f.hi) + 1, false);
  star = !text.empty() && (text[0] == '*' || text[0] == '?');
  if (text.empty()) return Status::InvalidArgument(fmt::format("{}: empty", f.name));
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view part =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (part.empty()) {
      return Status::InvalidArgument(fmt::format("{}: an empty item in '{}'", f.name, text));
    }
    std::string_view base = part, step_text;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      base = part.substr(0, slash);
      step_text = part.substr(slash + 1);
    }
    int lo, hi, step = 1;
    if (base == "*" || base == "?") {
      if (base == "?" && !f.question_ok) {
        return Status::InvalidArgument(
            fmt::format("{}: '?' is only for day-of-month and day-of-week", f.name));
      }
      lo = f.lo;
      hi = f.hi;
    } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
      auto a = Value(f, base.substr(0, dash));
      if (!a.ok()) return a.status();
      auto b = Value(f, base.substr(dash + 1));
      if (!b.ok()) return b.status();
      if (*b < *a) {
        return Status::InvalidArgument(
            fmt::format("{}: the range {} goes backwards", f.name, base));
      }
      lo = *a;
      hi = *b;
    } else {
      auto a = Value(f, base);
      if (!a.ok()) return a.status();
      lo = *a;
      hi = step_text.empty() ? *a : f.hi;  // "3/10": from 3 to the end, every 10
    }
    if (!step_text.empty() || part.find('/') != std::string_view::npos) {
      int s = 0;
      bool ok = !step_text.empty() && step_text.size() <= 3;
      for (char c : step_text) ok = ok && std::isdigit(static_cast<unsigned char>(c));
      if (ok) s = std::stoi(std::string(step_text));
      if (!ok || s < 1) {
        return Status::InvalidArgument(
            fmt::format("{}: the step in '{}' must be a whole number of at least 1", f.name, part));
      }
      step = s;
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<size_t>(v)] = true;
  }
  return Status::Ok();
}

template <size_t N>
void Fill(std::bitset<N>& out, const std::vector<bool>& bits) {
  for (size_t i = 0; i < bits.size() && i < N; ++i) out[i] = bits[i];
}

// The lowest set bit >= from, or -1.
template <size_t N>
int NextSet(const std::bitset<N>& b, int from) {
  for (int i = std::max(from, 0); i < static_cast<int>(N); ++i) {
    if (b[static_cast<size_t>(i)]) return i;
  }
  return -1;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

Result<Zone> Zone::Locate(std::string_view name) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") return Utc();
  try {
    return Zone(std::string(name), date::locate_zone(std::string(name)));
  } catch (const std::exception&) {
    return Status::InvalidArgument(
        fmt::format("'{}' is not a time zone of the tz database (such as Europe/Berlin)", name));
  }
}

Zone Zone::Utc() { return Zone("UTC", nullptr); }

std::string FormatInZone(TimePoint t, const Zone& zone) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  if (!zone.tz()) return date::format("%F %T UTC", secs);
  return date::format("%F %T %Z", date::make_zoned(zone.tz(), secs));
}

Result<Cron> Cron::Parse(std::string_view expression) {
  Cron c;
  c.expression_ = std::string(expression);
  std::string_view e = expression;
  while (!e.empty() && std::isspace(static_cast<unsigned char>(e.front()))) e.remove_prefix(1);
  while (!e.empty() && std::isspace(static_cast<unsigned char>(e.back()))) e.remove_suffix(1);
  if (e.starts_with("@every")) {
    auto rest = e.substr(6);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    auto d = ParseDuration(rest);
    if (rest.empty() || !d || d->count() < 1000 || *d > std::chrono::hours(24 * 366)) {
      return Status::InvalidArgument(fmt::format(
          "@every: '{}' is not a duration from 1s to 366d (such as 10s, 5m, 2 hours)", rest));
    }
    c.every_ = *d;
    return c;
  }
  std::string fields_text(e);
  if (e.starts_with('@')) {
    static const std::pair<const char*, const char*> kMacros[] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}};
    bool found = false;
    for (const auto& [name, fields] : kMacros) {
      if (e == name) {
        fields_text = fields;
        found = true;
      }
    }
    if (!found) {
      return Status::InvalidArgument(
          fmt::format("'{}' is not a macro (@yearly, @monthly, @weekly, @daily, @hourly, "
                      "@every <duration>)",
                      e));
    }
  }
  std::vector<std::string> fields;
  for (size_t i = 0; i < fields_text.size();) {
    while (i < fields_text.size() && std::isspace(static_cast<unsigned char>(fields_text[i]))) ++i;
    size_t j = i;
    while (j < fields_text.size() && !std::isspace(static_cast<unsigned char>(fields_text[j]))) ++j;
    if (j > i) fields.push_back(fields_text.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5 && fields.size() != 6) {
    return Status::InvalidArgument(fmt::format(
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds "
        "first, got {}",
        fields.size()));
  }
  size_t k = 0;
  std::vector<bool> bits;
  bool star = false;
  if (fields.size() == 6) {
    DROVER_RETURN_IF_ERROR(ParseField(kSecond, fields[k++], bits, star));
    Fill(c.seconds_, bits);
  } else {
    c.seconds_[0] = true;
  }
  DROVER_RETURN_IF_ERROR(ParseField(kMinute, fields[k++], bits, star));
  Fill(c.minutes_, bits);
  DROVER_RETURN_IF_ERROR(ParseField(kHour, fields[k++], bits, star));
  Fill(c.hours_, bits);
  DROVER_RETURN_IF_ERROR(ParseField(kDay_, fields[k++], bits, c.day_star_));
  Fill(c.days_, bits);
  DROVER_RETURN_IF_ERROR(ParseField(kMonth, fields[k++], bits, star));
  Fill(c.months_, bits);
  DROVER_RETURN_IF_ERROR(ParseField(kWeekday, fields[k++], bits, c.weekday_star_));
  for (size_t d = 0; d < bits.size(); ++d) {
    if (bits[d]) c.weekdays_[d % 7] = true;  // 7 is Sunday too
  }
  return c;
}

bool Cron::DayMatches(int, unsigned, unsigned day, unsigned weekday) const {
  bool dom = days_[day], dow = weekdays_[weekday];
  // Vixie cron: either field unrestricted (starting with *) → both must match; both
  // restricted → either may.
  if (day_star_ || weekday_star_) return dom && dow;
  return dom || dow;
}

bool Cron::Matches(int64_t wall) const {
  int64_t d = FloorDiv(wall, kDay), s = wall - d * kDay;
  date::sys_days day{date::days{d}};
  date::year_month_day ymd{day};
  unsigned wd = date::weekday{day}.c_encoding();
  return months_[unsigned(ymd.month())] &&
         DayMatches(int(ymd.year()), unsigned(ymd.month()), unsigned(ymd.day()), wd) &&
         hours_[static_cast<size_t>(s / 3600)] && minutes_[static_cast<size_t>(s % 3600 / 60)] &&
         seconds_[static_cast<size_t>(s % 60)];
}

std::optional<int64_t> Cron::NextWall(int64_t t, int64_t limit) const {
  while (t <= limit) {
    int64_t d = FloorDiv(t, kDay), s = t - d * kDay;
    date::sys_days day{date::days{d}};
    date::year_month_day ymd{day};
    if (!months_[unsigned(ymd.month())]) {
      auto next = date::year_month{ymd.year(), ymd.month()} + date::months{1};
      t = date::sys_days{next / 1}.time_since_epoch().count() * kDay;
      continue;
    }
    if (!DayMatches(int(ymd.year()), unsigned(ymd.month()), unsigned(ymd.day()),
                    date::weekday{day}.c_encoding())) {
      t = (d + 1) * kDay;
      continue;
    }
    int h = static_cast<int>(s / 3600), m = static_cast<int>(s % 3600 / 60),
        sec = static_cast<int>(s % 60);
    if (!hours_[static_cast<size_t>(h)]) {
      int nh = NextSet(hours_, h + 1);
      t = nh < 0 ? (d + 1) * kDay : d * kDay + nh * 3600;
      continue;
    }
    if (!minutes_[static_cast<size_t>(m)]) {
      int nm = NextSet(minutes_, m + 1);
      t = nm < 0 ? d * kDay + (h + 1) * 3600 : d * kDay + h * 3600 + nm * 60;
      continue;
    }
    if (!seconds_[static_cast<size_t>(sec)]) {
      int ns = NextSet(seconds_, sec + 1);
      t = ns < 0 ? d * kDay + h * 3600 + (m + 1) * 60 : d * kDay + h * 3600 + m * 60 + ns;
      continue;
    }
    return t;
  }
  return std::nullopt;
}

std::optional<TimePoint> Cron::Next(TimePoint after, const Zone& zone, TimePoint anchor) const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  if (every()) {
    int64_t a = ToUnixMillis(anchor), x = ToUnixMillis(after), p = every_.count();
    int64_t next = a + (FloorDiv(x - a, p) + 1) * p;
    if (next > kLatestMillis) return std::nullopt;  // past what a TimePoint holds
    return FromUnixMillis(next);
  }
  int64_t after_s = FloorDiv(ToUnixMillis(after), 1000);
  auto to_point = [](int64_t unix_s) { return FromUnixMillis(unix_s * 1000); };
  if (!zone.tz()) {
    auto w = NextWall(after_s + 1, after_s + kHorizon);
    if (!w) return std::nullopt;
    return to_point(*w);
  }
  const date::time_zone* tz = zone.tz();
  date::sys_seconds after_sys{seconds{after_s}};
  int64_t local_after =
      after_s + tz->get_info(after_sys).offset.count();  // the wall time at `after`
  int64_t from = local_after + 1, limit = local_after + kHorizon;
  while (true) {
    auto w = NextWall(from, limit);
    if (!w) return std::nullopt;
    auto info = tz->get_info(date::local_seconds{seconds{*w}});
    int64_t t;
    switch (info.result) {
      case date::local_info::unique:
      case date::local_info::ambiguous:  // the first occurrence
        t = *w - info.first.offset.count();
        break;
      default:  // in a gap: the first instant after it
        t = info.first.end.time_since_epoch().count();
        break;
    }
    if (t > after_s) return to_point(t);
    from = *w + 1;
  }
}

}  // namespace drover::cron
