#include "common/text.h"

#include <gtest/gtest.h>

#include "common/json.h"

namespace drover {
namespace {

TEST(Text, AcceptsUtf8AndRefusesEverythingElse) {
  for (std::string ok : std::vector<std::string>{
           "", "plain", "caf\xc3\xa9", "\xe2\x9c\x93 ok", "\xf0\x9f\x9a\x80", "\xef\xbf\xbf",
           "\xf4\x8f\xbf\xbf", std::string(100, 'a') + "\xc3\xa9"}) {
    EXPECT_TRUE(IsValidText(ok)) << ok;
  }
  for (std::string bad : std::vector<std::string>{
           "\x80",              // a stray continuation byte
           "caf\xe9",           // Latin-1
           "\xc0\xaf",          // overlong '/'
           "\xe0\x80\xaf",      // overlong
           "\xed\xa0\x80",      // a surrogate (U+D800)
           "\xf4\x90\x80\x80",  // above U+10FFFF
           "\xe2\x9c",          // truncated
           "\xff",              // never in UTF-8
           std::string(20, 'a') + "\xc3",
       }) {
    EXPECT_EQ(TextProblem(bad), "is not valid UTF-8") << testing::PrintToString(bad);
  }
  EXPECT_EQ(TextProblem(std::string("a\0b", 3)), "contains the NUL character");
  EXPECT_EQ(TextProblem(std::string(17, 'x') + std::string(1, '\0')), "contains the NUL character");
  EXPECT_EQ(FirstBadTextByte("abc\xff"), 3u);
  EXPECT_EQ(LineColumn("ab\ncd\xff", 5), "line 2, column 3");
}

// Whatever bytes a string holds, the JSON written for it is valid UTF-8: bad bytes become U+FFFD.
TEST(Text, AnythingBecomesTextWithQuestionMarks) {
  EXPECT_EQ(ToValidText("plain é ✓"), "plain é ✓");
  EXPECT_EQ(ToValidText(std::string("a\0b", 3)), "a?b");
  EXPECT_EQ(ToValidText("\xff\xfe ok"), "?? ok");
  EXPECT_EQ(ToValidText("\xc0\xaf"), "??");          // overlong
  EXPECT_EQ(ToValidText("\xed\xa0\x80"), "???");     // a surrogate
  EXPECT_EQ(ToValidText("cut \xe2\x9c"), "cut ??");  // truncated at the end
  for (std::string s : {std::string("\xf4\x90\x80\x80"), std::string("x\x80y")}) {
    EXPECT_TRUE(IsValidText(ToValidText(s)));
  }
}

TEST(Text, JsonStringsAreAlwaysValidUtf8) {
  std::string out;
  AppendJsonString(out,
                   std::string("ok \xc3\xa9 \xff\xfe no\x01 ") + std::string(20, 'z') + "\x80");
  EXPECT_EQ(out, "\"ok \xc3\xa9 \\ufffd\\ufffd no\\u0001 " + std::string(20, 'z') + "\\ufffd\"");
  EXPECT_TRUE(IsUtf8(out));
}

TEST(Text, JsonBodiesNameTheFieldThatIsNotText) {
  auto r = ParseJsonObject(
      "{\"value\":\"ok\",\"spec\":{\"agent\":{\"ref\":\"\xff\"}},"
      "\"list\":[\"a\",\"b\\u0000\"]}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  ASSERT_EQ(r.status().errors().size(), 2u) << r.status().ToString();
  EXPECT_EQ(r.status().errors()[0].field, "spec.agent.ref");
  EXPECT_EQ(r.status().errors()[1].field, "list[1]");
  EXPECT_NE(r.status().errors()[1].message.find("NUL"), std::string::npos);
  auto key = ParseJsonObject("{\"k\xc3\":1}");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().errors().at(0).message.find("key"), std::string::npos);
  EXPECT_TRUE(ParseJsonObject("{\"v\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude80\"}").ok());
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

TEST(Text, CaseInsensitiveEqualityStaysInBounds) {
  EXPECT_TRUE(EqualsIgnoreCase("htTp://", "http://"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("http", "https"));
  EXPECT_FALSE(EqualsIgnoreCase("chunked", "chunkeX"));
  EXPECT_EQ(ParseBool("YES"), true);
  EXPECT_EQ(ParseBool("0"), false);
  EXPECT_FALSE(ParseBool("maybe").has_value());
}

}  // namespace
}  // namespace drover
