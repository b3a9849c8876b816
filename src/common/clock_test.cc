#include "common/clock.h"

#include <gtest/gtest.h>

#include <ctime>

namespace drover {
namespace {

TEST(Clock, FormatsRfc3339Utc) {
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(1795000000123)), "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(951782400000)), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(-1)), "1969-12-31T23:59:59.999Z");
}

TEST(Clock, MatchesGmtimeAcrossCenturies) {
  // Every 7 hours 13 minutes from 1900 to 2200, against the C library.
  for (int64_t s = -2208988800LL; s < 7258118400LL; s += 7 * 3600 + 13 * 60 + 17) {
    std::time_t tt = s;
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char want[32];
    std::strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    ASSERT_EQ(FormatRfc3339(FromUnixMillis(s * 1000)), want) << s;
  }
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Found by json_spec_fuzz: year 7026 overflowed the nanosecond TimePoint.
TEST(Clock, Rfc3339YearsOutsideTheTimePointRangeAreRefused) {
  EXPECT_FALSE(ParseRfc3339("7026-12-01T13:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2262-05-01T00:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("1969-12-31T23:59:59Z").has_value());
  EXPECT_TRUE(ParseRfc3339("2199-12-31T23:59:59Z").has_value());
}

}  // namespace
}  // namespace drover
