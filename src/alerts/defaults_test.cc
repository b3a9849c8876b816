#include "alerts/defaults.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <set>

#include "alerts/rule_spec.h"

namespace drover::alerts {
namespace {

// Each built-in rule is a valid rule with a summary, under a unique name.
TEST(DefaultRules, EveryOneParsesAndSaysWhatIsWrong) {
  std::set<std::string_view> names;
  for (const auto& d : DefaultRules()) {
    SCOPED_TRACE(d.name);
    EXPECT_TRUE(names.insert(d.name).second);
    auto spec = ParseRuleDocument(boost::json::parse(d.spec_json), d.name);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_TRUE(spec->annotations.count("summary"));
  }
  EXPECT_EQ(names.size(), 5u);
}

}  // namespace
}  // namespace drover::alerts
