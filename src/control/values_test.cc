#include "control/values.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace drover::control {
namespace {

TEST(Values, UnsetMeansEmptyOrDash) {
  EXPECT_TRUE(IsUnsetValue(""));
  EXPECT_TRUE(IsUnsetValue("-"));
  EXPECT_FALSE(IsUnsetValue("--"));
  EXPECT_FALSE(IsUnsetValue(" "));
}

TEST(Values, OneBooleanParser) {
  for (auto t : {"true", "TRUE", "yes", "Yes", "1"}) EXPECT_EQ(ParseBool(t), true) << t;
  for (auto f : {"false", "False", "no", "NO", "0"}) EXPECT_EQ(ParseBool(f), false) << f;
  for (auto bad : {"", "y", "on", "2", "truee", " true"}) EXPECT_FALSE(ParseBool(bad)) << bad;
}

TEST(Values, SecondsAcceptNumbersAndBothDurationForms) {
  EXPECT_EQ(ParseSeconds("30"), std::chrono::seconds(30));
  EXPECT_EQ(ParseSeconds("90s"), std::chrono::seconds(90));
  EXPECT_EQ(ParseSeconds("10m"), std::chrono::minutes(10));
  EXPECT_EQ(ParseSeconds("3 minutes"), std::chrono::minutes(3));
  EXPECT_EQ(ParseSeconds("2 hours"), std::chrono::hours(2));
  EXPECT_EQ(ParseSeconds("7 days"), std::chrono::hours(7 * 24));
  EXPECT_FALSE(ParseSeconds("-5"));
  EXPECT_FALSE(ParseSeconds("soon"));
  EXPECT_FALSE(ParseSeconds("3 fortnights"));
}

TEST(Values, CapacityPlainNumber) {
  auto c = ParseCapacity("3");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(ResolveCapacity(*c, "aws", "eu-central-1"), 3);
  EXPECT_EQ(ResolveCapacity(*c, "", ""), 3);
}

TEST(Values, CapacityPrecedenceRegionOverCloudOverAll) {
  auto c = ParseCapacity(R"({"all":3,"aws":{"all":2,"eu-central-1":1},"gcp":5})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(ResolveCapacity(*c, "aws", "eu-central-1"), 1);
  EXPECT_EQ(ResolveCapacity(*c, "aws", "us-east-1"), 2);
  EXPECT_EQ(ResolveCapacity(*c, "aws", ""), 2);
  EXPECT_EQ(ResolveCapacity(*c, "gcp", "europe-west1"), 5);
  EXPECT_EQ(ResolveCapacity(*c, "azure", "westeurope"), 3);
  EXPECT_EQ(ResolveCapacity(*c, "", ""), 3);
}

TEST(Values, CapacityThatIsNotAWholeNumberLeavesCapacityAlone) {
  auto c = ParseCapacity(R"({"aws":{"eu-central-1":"-","all":2}})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(ResolveCapacity(*c, "aws", "eu-central-1"), std::nullopt);
  EXPECT_EQ(ResolveCapacity(*c, "aws", "us-east-1"), 2);
  EXPECT_EQ(ResolveCapacity(*c, "gcp", "x"), std::nullopt);  // nothing applies
  auto frac = ParseCapacity("2.5");
  ASSERT_TRUE(frac.ok());
  EXPECT_EQ(ResolveCapacity(*frac, "aws", ""), std::nullopt);
}

TEST(Values, CapacityRejectsMalformedAndNegative) {
  EXPECT_FALSE(ParseCapacity("{\"all\":").ok());
  EXPECT_FALSE(ParseCapacity("three").ok());
  EXPECT_FALSE(ParseCapacity("-1").ok());
  EXPECT_FALSE(ParseCapacity(R"({"all":-2})").ok());
  EXPECT_FALSE(ParseCapacity(R"({"aws":{"eu":{"deeper":1}}})").ok());
}

TEST(Values, CheckValueKnowsEachForm) {
  EXPECT_EQ(CheckValue("cc-a-force-run", "yes"), std::nullopt);
  EXPECT_NE(CheckValue("cc-a-force-run", "maybe"), std::nullopt);
  EXPECT_EQ(CheckValue("cc-a-interval", "2 minutes"), std::nullopt);
  EXPECT_NE(CheckValue("cc-a-delay", "later"), std::nullopt);
  EXPECT_EQ(CheckValue("cc-a-type", "ansible"), std::nullopt);
  EXPECT_NE(CheckValue("cc-a-type", "puppet"), std::nullopt);
  EXPECT_NE(CheckValue("cc-a-desired-capacity", "{"), std::nullopt);
  EXPECT_EQ(CheckValue("cc-w-a-start", "2026-12-01T13:00:00Z"), std::nullopt);
  EXPECT_NE(CheckValue("cc-w-a-stop", "tomorrow"), std::nullopt);
  EXPECT_EQ(CheckValue("cc-w-a-start-offset", "3 minutes"), std::nullopt);
  EXPECT_NE(CheckValue("cc-w-a-start-offset", "3 moments"), std::nullopt);
  EXPECT_EQ(CheckValue("cc-a-repository", "file:///srv/repo.git"), std::nullopt);
  EXPECT_EQ(CheckValue("cc-a-repository", "git@github.com:org/repo.git"), std::nullopt);
  EXPECT_NE(CheckValue("cc-a-repository", "not a url"), std::nullopt);
  // Unset is always fine, and unknown keys are free-form.
  EXPECT_EQ(CheckValue("cc-a-type", "-"), std::nullopt);
  EXPECT_EQ(CheckValue("cc-a-build-tag", "anything at all"), std::nullopt);
}

TEST(Values, EnvNameUpperCasesAndReplacesDashes) {
  EXPECT_EQ(EnvName("cc-a-build-tag"), "CC_A_BUILD_TAG");
  EXPECT_EQ(EnvName("cc-a-x9"), "CC_A_X9");
}

TEST(Rfc3339, ParsesOffsetsAndFractions) {
  auto t = ParseRfc3339("2026-12-01T13:00:00Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(FormatRfc3339(*t), "2026-12-01T13:00:00.000Z");
  auto o = ParseRfc3339("2026-12-01T14:00:00.25+01:00");
  ASSERT_TRUE(o);
  EXPECT_EQ(FormatRfc3339(*o), "2026-12-01T13:00:00.250Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2024-02-29T00:00:00-00:30")), "2024-02-29T00:30:00.000Z");
  for (auto bad : {"2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-12-01 13:00", "x",
                   "2026-12-01T13:00:00", "2026-12-01T13:00:00Zjunk"}) {
    EXPECT_FALSE(ParseRfc3339(bad)) << bad;
  }
}

}  // namespace
}  // namespace drover::control
