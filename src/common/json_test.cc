#include "common/json.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/text.h"

namespace drover {
namespace {

TEST(Json, ParseRejectsMalformedAndNonObjects) {
  EXPECT_EQ(ParseJsonObject("{").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseJsonObject("[1]").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ParseJsonObject("\"x\"").status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(ParseJsonObject("{\"a\":1}").ok());
}

TEST(Json, DecoderReportsEveryProblemAtOnce) {
  auto obj = ParseJsonObject(R"({"value": 5, "extra": true, "flag": "yes"})");
  ASSERT_TRUE(obj.ok());
  JsonDecoder d(*obj);
  EXPECT_FALSE(d.String("value", true).has_value());
  EXPECT_FALSE(d.String("name", true).has_value());
  EXPECT_FALSE(d.Bool("flag", false).has_value());
  Status s = d.Finish();
  ASSERT_EQ(s.code(), Status::Code::kValidation);
  std::vector<FieldError> want = {{"value", "must be a string"},
                                  {"name", "is required (string)"},
                                  {"flag", "must be a boolean"},
                                  {"extra", "unknown field"}};
  EXPECT_EQ(s.errors(), want);
}

TEST(Json, DecoderAcceptsWellTypedFields) {
  auto obj = ParseJsonObject(R"({"s": "x", "n": 42, "b": false, "nul": null})");
  ASSERT_TRUE(obj.ok());
  JsonDecoder d(*obj, "spec.");
  EXPECT_EQ(d.String("s", true), "x");
  EXPECT_EQ(d.Int("n", true), 42);
  EXPECT_EQ(d.Bool("b", true), false);
  EXPECT_FALSE(d.String("nul", false).has_value());
  EXPECT_TRUE(d.Finish().ok());
}

TEST(Json, IntRejectsFractionsAndPrefixesNestedFields) {
  auto obj = ParseJsonObject(R"({"n": 1.5})");
  JsonDecoder d(*obj, "spec.");
  EXPECT_FALSE(d.Int("n", true).has_value());
  Status s = d.Finish();
  ASSERT_EQ(s.errors().size(), 1u);
  EXPECT_EQ(s.errors()[0].field, "spec.n");
}

TEST(Json, EscapingMatchesAByteAtATimeReference) {
  // Long strings take the 16-byte path; specials at every offset (also inside a UTF-8 sequence,
  // which it then breaks), well-formed UTF-8 left alone.
  auto reference = [](std::string_view in) {
    std::string out = "\"";
    for (size_t i = 0; i < in.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(in[i]);
      if (c >= 0x80) {  // whole UTF-8 sequences are copied, stray bytes become U+FFFD
        size_t n = Utf8SequenceLength(in, i);
        if (n == 0) {
          out += "\\ufffd";
        } else {
          out.append(in.substr(i, n));
          i += n - 1;
        }
        continue;
      }
      if (c == '"')
        out += "\\\"";
      else if (c == '\\')
        out += "\\\\";
      else if (c == '\n')
        out += "\\n";
      else if (c == '\r')
        out += "\\r";
      else if (c == '\t')
        out += "\\t";
      else if (c < 0x20)
        out += fmt::format("\\u{:04x}", c);
      else
        out += static_cast<char>(c);
    }
    return out + "\"";
  };
  std::string base = "abcdefghijklmnopqrstuvwxyz0123456789-héllo-\xe2\x82\xac";
  for (char special : {'"', '\\', '\n', '\x01', '\x1f', '\t'}) {
    for (size_t pos = 0; pos <= base.size(); ++pos) {
      std::string in = base;
      in.insert(pos, 1, special);
      std::string got;
      AppendJsonString(got, in);
      ASSERT_EQ(got, reference(in)) << "special " << int(special) << " at " << pos;
    }
  }
}

TEST(Json, EscapesControlCharacters) {
  std::string out;
  AppendJsonString(out, "a\"b\\c\n\x01");
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001")");
}

}  // namespace
}  // namespace drover

namespace drover {
namespace {

// Found by json_spec_fuzz: a huge double was cast to an integer before its range was checked.
TEST(Json, HugeNumbersAreNotIntegersAndNeverOverflow) {
  auto obj = ParseJsonObject(R"({"a":8.66667e127,"b":-1e300,"c":3.0,"d":9.3e18})");
  ASSERT_TRUE(obj.ok());
  JsonDecoder d(*obj);
  EXPECT_FALSE(d.Int("a", true).has_value());
  EXPECT_FALSE(d.Int("b", true).has_value());
  EXPECT_EQ(d.Int("c", true), 3);
  EXPECT_FALSE(d.Int("d", true).has_value());
  EXPECT_EQ(d.Finish().errors().size(), 3u);
}

}  // namespace
}  // namespace drover
