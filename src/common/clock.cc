#include "common/clock.h"

#include <fmt/format.h>

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

}  // namespace drover
