#include "common/clock.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace drover {

SystemClock& SystemClock::Get() {
  static SystemClock clock;
  return clock;
}

int64_t ToUnixMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint FromUnixMillis(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

namespace {

// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm): pure arithmetic, no
// locks or time zone state, unlike gmtime_r.
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yoe + era * 400 + (*m <= 2));
}

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void Put(char* p, unsigned v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

}  // namespace

std::string FormatRfc3339(TimePoint t) {
  int64_t ms = ToUnixMillis(t);
  int64_t days = ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000;
  int64_t rem = ms - days * 86400000;  // 0 .. 86399999
  int y;
  unsigned mo, d;
  CivilFromDays(days, &y, &mo, &d);
  if (y < 0 || y > 9999) return "0000-01-01T00:00:00.000Z";  // outside RFC 3339
  auto secs = static_cast<unsigned>(rem / 1000);
  char buf[25] = "0000-00-00T00:00:00.000Z";
  Put(buf, static_cast<unsigned>(y), 4);
  Put(buf + 5, mo, 2);
  Put(buf + 8, d, 2);
  Put(buf + 11, secs / 3600, 2);
  Put(buf + 14, secs / 60 % 60, 2);
  Put(buf + 17, secs % 60, 2);
  Put(buf + 20, static_cast<unsigned>(rem % 1000), 3);
  return std::string(buf, 24);
}

std::optional<TimePoint> ParseRfc3339(std::string_view s) {
  size_t i = 0;
  auto num = [&](int width, unsigned* out) {
    unsigned v = 0;
    for (int k = 0; k < width; ++k, ++i) {
      if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
    }
    *out = v;
    return true;
  };
  auto lit = [&](std::string_view chars) {
    if (i >= s.size() || chars.find(s[i]) == std::string_view::npos) return false;
    ++i;
    return true;
  };
  unsigned y, mo, d, h, mi, sec, ms = 0;
  if (!num(4, &y) || !lit("-") || !num(2, &mo) || !lit("-") || !num(2, &d) || !lit("Tt ") ||
      !num(2, &h) || !lit(":") || !num(2, &mi) || !lit(":") || !num(2, &sec)) {
    return std::nullopt;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    unsigned scale = 100;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ms += static_cast<unsigned>(s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int64_t offset_min = 0;
  if (lit("Zz")) {
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1;
    ++i;
    unsigned oh, om;
    if (!num(2, &oh) || !lit(":") || !num(2, &om) || oh > 23 || om > 59) return std::nullopt;
    offset_min = sign * static_cast<int64_t>(oh * 60 + om);
  } else {
    return std::nullopt;
  }
  static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  // Years 1970-2199: a TimePoint counts nanoseconds and ends in 2262; nothing drover schedules
  // or records lies outside.
  if (i != s.size() || y < 1970 || y > 2199 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] ||
      (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60) {
    return std::nullopt;
  }
  int64_t secs = DaysFromCivil(static_cast<int>(y), mo, d) * 86400 + h * 3600 + mi * 60 +
                 std::min(sec, 59u) - offset_min * 60;
  return FromUnixMillis(secs * 1000 + ms);
}

}  // namespace drover
