#include "queues/filter.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace drover::queues {
namespace {

FilterPolicy Parse(const char* json) {
  auto p = ParseFilter(boost::json::parse(json));
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : FilterPolicy{};
}

TEST(Filter, EachKindOfCondition) {
  struct Case {
    const char* filter;
    std::map<std::string, std::string> attrs;
    bool match;
  };
  const Case cases[] = {
      {R"({})", {}, true},
      {R"({"region": "eu"})", {{"region", "eu"}}, true},
      {R"({"region": "eu"})", {{"region", "us"}}, false},
      {R"({"region": "eu"})", {}, false},
      {R"({"region": ["eu", "us"]})", {{"region", "us"}}, true},
      {R"({"region": ["eu", "us"]})", {{"region", "ap"}}, false},
      {R"({"region": {"prefix": "eu-"}})", {{"region", "eu-west"}}, true},
      {R"({"region": {"prefix": "eu-"}})", {{"region", "us-east"}}, false},
      {R"({"region": {"anything_but": ["eu"]}})", {{"region", "us"}}, true},
      {R"({"region": {"anything_but": ["eu"]}})", {{"region", "eu"}}, false},
      {R"({"region": {"anything_but": "eu"}})", {}, false},  // needs the attribute
      {R"({"region": {"anything-but": "eu"}})", {{"region", "ap"}}, true},
      {R"({"region": {"exists": true}})", {{"region", ""}}, true},
      {R"({"region": {"exists": true}})", {}, false},
      {R"({"region": {"exists": false}})", {}, true},
      {R"({"region": {"exists": false}})", {{"region", "eu"}}, false},
      {R"({"region": ["eu", {"prefix": "us-"}]})", {{"region", "us-east"}}, true},
      // Every attribute must match.
      {R"({"region": "eu", "tier": "gold"})", {{"region", "eu"}, {"tier", "gold"}}, true},
      {R"({"region": "eu", "tier": "gold"})", {{"region", "eu"}, {"tier", "free"}}, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Matches(Parse(c.filter), c.attrs), c.match) << c.filter;
  }
}

TEST(Filter, BadPoliciesNameTheAttribute) {
  for (const char* bad :
       {R"({"a": 1})", R"({"a": []})", R"({"a": {"suffix": "x"}})", R"({"a": {"prefix": 1}})",
        R"({"a": {"exists": "yes"}})", R"({"a": {"prefix": "x", "exists": true}})",
        R"({"a": [["x"]]})", R"({"a": {"anything_but": [1]}})"}) {
    auto p = ParseFilter(boost::json::parse(bad));
    ASSERT_FALSE(p.ok()) << bad;
    ASSERT_FALSE(p.status().errors().empty()) << bad;
    EXPECT_EQ(p.status().errors()[0].field, "filter.a") << bad;
  }
  EXPECT_FALSE(ParseFilter(boost::json::parse(R"(["a"])")).ok());
}

}  // namespace
}  // namespace drover::queues
