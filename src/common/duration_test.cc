#include "common/duration.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

using std::chrono::milliseconds;

TEST(Duration, ShortAndLongForms) {
  EXPECT_EQ(ParseDuration("90s"), milliseconds(90000));
  EXPECT_EQ(ParseDuration("10m"), milliseconds(600000));
  EXPECT_EQ(ParseDuration("2h"), milliseconds(7200000));
  EXPECT_EQ(ParseDuration("1d"), milliseconds(86400000));
  EXPECT_EQ(ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(ParseDuration("1h30m"), milliseconds(5400000));
  EXPECT_EQ(ParseDuration("3 minutes"), milliseconds(180000));
  EXPECT_EQ(ParseDuration("2 hours"), milliseconds(7200000));
  EXPECT_EQ(ParseDuration("7 days"), milliseconds(7 * 86400000LL));
  EXPECT_EQ(ParseDuration(" 1 second "), milliseconds(1000));
}

TEST(Duration, Rejects) {
  for (const char* bad : {"", "s", "10", "-5s", "5x", "1.5h", "10 parsecs", "99999999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(Duration, FormatsShortest) {
  EXPECT_EQ(FormatDuration(milliseconds(90000)), "90s");
  EXPECT_EQ(FormatDuration(milliseconds(7200000)), "2h");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Found by values_fuzz: a huge count of days overflowed before the century check.
TEST(Duration, HugeCountsAreRefusedWithoutOverflow) {
  EXPECT_FALSE(ParseDuration("540000000005d").has_value());
  EXPECT_FALSE(ParseDuration("53d77d540000000005d").has_value());
  EXPECT_FALSE(ParseDuration("999999999999h").has_value());
  EXPECT_TRUE(ParseDuration("36499d").has_value());
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Found by values_fuzz: a valid duration whose short form had too many digits to read back.
TEST(Duration, EveryDurationReadsBackFromItsShortForm) {
  for (const char* s : {"557777s000001292516901s07777s0000010ms00ms", "36499d", "1h30m", "1ms"}) {
    auto d = ParseDuration(s);
    ASSERT_TRUE(d.has_value()) << s;
    EXPECT_EQ(ParseDuration(FormatDuration(*d)), d) << s << " -> " << FormatDuration(*d);
  }
}

}  // namespace
}  // namespace drover
