#include "workflows/template.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/json.h"

namespace drover::workflows {
namespace {

namespace json = boost::json;

TEST(WorkflowTemplate, ALoneReferenceKeepsItsTypeAndTextIsJoined) {
  json::value input = json::parse(R"({"date":"2026-12-07","n":3,"rows":[{"id":7}]})");
  json::value out_a = json::parse(R"({"rows":[1,2]})");
  RenderContext ctx{&input, [&](std::string_view s) -> const json::value* {
                      return s == "a" ? &out_a : nullptr;
                    }};
  json::value v = json::parse(R"({"n":"{{ input.n }}","day":"on {{input.date}}!",
      "rows":"{{ steps.a.output.rows }}","id":"{{ input.rows.0.id }}",
      "text":"rows={{ steps.a.output.rows }}","missing":"{{ input.nope }}",
      "later":"{{ steps.b.output }}","plain":"no braces","num":5})");
  EXPECT_EQ(ToJson(Render(v, ctx)),
            R"({"n":3,"day":"on 2026-12-07!","rows":[1,2],"id":7,"text":"rows=[1,2]",)"
            R"("missing":null,"later":null,"plain":"no braces","num":5})");
  EXPECT_EQ(RenderText("/users/{{ input.n }}/{{ input.date }}", ctx), "/users/3/2026-12-07");
}

TEST(WorkflowTemplate, ParseRefusesWhatItCannotRead) {
  EXPECT_FALSE(ParseTemplate("{{ input").ok());
  EXPECT_FALSE(ParseTemplate("{{ }}").ok());
  EXPECT_FALSE(ParseTemplate("{{ input..x }}").ok());
  EXPECT_FALSE(ParseTemplate("{{ steps.a.input }}").ok());
  EXPECT_FALSE(ParseTemplate("{{ input.a b }}").ok());
  auto parts = ParseTemplate("x{{input.a.b}}y");
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].text, "x");
  ASSERT_TRUE((*parts)[1].ref);
  EXPECT_EQ((*parts)[1].ref->path, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*parts)[2].text, "y");
}

}  // namespace
}  // namespace drover::workflows
