#include "common/yaml.h"

#include <gtest/gtest.h>

#include "common/json.h"

namespace drover {
namespace {

TEST(Yaml, TypesPlainScalarsAndKeepsQuotedOnesAsStrings) {
  auto v = ParseYaml("a: 3\nb: true\nc: ~\nd: 2.5\ne: \"3\"\nf: main\ng: [1, x]\nh: {k: no}\n");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(ToJson(*v),
            R"({"a":3,"b":true,"c":null,"d":2.5E0,"e":"3","f":"main","g":[1,"x"],"h":{"k":"no"}})");
}

TEST(Yaml, SplitsDocumentsAndSkipsEmptyOnes) {
  auto docs = ParseYamlDocuments("kind: A\n---\n---\nkind: B\n");
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ(ToJson((*docs)[1]), R"({"kind":"B"})");
  EXPECT_FALSE(ParseYaml("kind: A\n---\nkind: B\n").ok());
}

TEST(Yaml, MalformedYamlSaysWhere) {
  auto v = ParseYaml("a: [1, 2\nb: 3\n");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("line"), std::string::npos) << v.status().message();
}

}  // namespace
}  // namespace drover
