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

namespace drover {
namespace {

// A plain scalar of 50,000 digits once overflowed the stack through a recursive std::regex.
TEST(Yaml, HugeNumericScalarsAreScannedWithoutRecursion) {
  std::string digits(50000, '7');
  auto v = ParseYaml("a: " + digits + "\nb: 1." + digits + "\n");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->at("a").as_string(), digits) << "too large for a number: stays text";
  EXPECT_EQ(v->at("b").as_double(), 1.7777777777777777);
}

TEST(Yaml, TypesFloatsAsTheCoreSchemaDoes) {
  auto v = ParseYaml("a: .5\nb: 5.\nc: -1e3\nd: +2.5E-1\ne: 1e\nf: .\ng: 1.2.3\nh: e5\n");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->at("a").as_double(), 0.5);
  EXPECT_EQ(v->at("b").as_double(), 5.0);
  EXPECT_EQ(v->at("c").as_double(), -1000.0);
  EXPECT_EQ(v->at("d").as_double(), 0.25);
  for (const char* k : {"e", "f", "g", "h"}) EXPECT_TRUE(v->at(k).is_string()) << k;
}

TEST(Yaml, AliasesExpandWithinABudget) {
  auto ok = ParseYaml("base: &b {provider: static, capacity: 2}\ncopy: *b\nlist: [*b, *b]\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ToJson(ok->at("list").at(1)), R"({"provider":"static","capacity":2})");
  // Nine levels of ten aliases each would be a billion nodes: refused quickly, not built.
  std::string bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    bomb += std::string(1, c) + ": &" + std::string(1, c) + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ",*" : "*") + prev;
    bomb += "]\n";
  }
  auto v = ParseYaml(bomb);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("nodes"), std::string::npos) << v.status().message();
  // Few nodes, many bytes: a long string repeated by aliases is bounded too.
  std::string wide = "a: &a \"" + std::string(600000, 'x') + "\"\nb: [";
  for (int i = 0; i < 40; ++i) wide += (i ? ",*a" : "*a");
  auto w = ParseYaml(wide + "]\n");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("MiB"), std::string::npos) << w.status().message();
}

TEST(Yaml, RefusesWhatIsNotPlainData) {
  EXPECT_NE(ParseYaml("a: 1\na: 2\n").status().message().find("duplicate key 'a'"),
            std::string::npos);
  EXPECT_NE(ParseYaml("? [1, 2]\n: x\n").status().message().find("keys must be plain strings"),
            std::string::npos);
  EXPECT_NE(ParseYaml("a: *nothing\n").status().message().find("malformed YAML"), std::string::npos)
      << ParseYaml("a: *nothing\n").status().message();
  std::string deep = "a: " + std::string(200, '[') + std::string(200, ']') + "\n";
  EXPECT_NE(ParseYaml(deep).status().message().find("deeper than 64"), std::string::npos)
      << ParseYaml(deep).status().message();
}

TEST(Yaml, TextMustBeUtf8WithoutNul) {
  auto bad = ParseYaml("a: ok\nb: caf\xe9\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2, column 7"), std::string::npos)
      << bad.status().message();
  auto nul = ParseYaml("spec:\n  agent: {ref: \"x\\0y\"}\n");
  ASSERT_FALSE(nul.ok());
  ASSERT_EQ(nul.status().errors().size(), 1u) << nul.status().ToString();
  EXPECT_EQ(nul.status().errors()[0].field, "spec.agent.ref");
  EXPECT_TRUE(ParseYaml("name: caf\xc3\xa9 \xe2\x9c\x93\n").ok());
}

}  // namespace
}  // namespace drover
