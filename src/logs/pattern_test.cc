#include "logs/pattern.h"

#include <gtest/gtest.h>

#include <chrono>

namespace drover::logs {
namespace {

bool M(std::string_view q, std::string_view line) {
  auto p = Pattern::Parse(q);
  EXPECT_TRUE(p.ok()) << q << ": " << p.status().message();
  return p.ok() && p->Matches(line);
}

TEST(Pattern, PlainTextIsASubstring) {
  EXPECT_TRUE(M("error", "an error here"));
  EXPECT_FALSE(M("error", "an Error here"));
  EXPECT_TRUE(M("a.b", "xa.by"));
  EXPECT_FALSE(M("a.b", "axb"));  // not between slashes: the dot is a dot
  EXPECT_TRUE(M("", "anything"));
  EXPECT_TRUE(M("/", "a/b"));
}

TEST(Pattern, SlashesMakeASimpleRegularExpression) {
  struct Case {
    const char* q;
    const char* line;
    bool match;
  } cases[] = {
      {"/a.c/", "xxabcxx", true},
      {"/a.c/", "ac", false},
      {"/^abc/", "abcd", true},
      {"/^abc/", "xabc", false},
      {"/abc$/", "xxabc", true},
      {"/abc$/", "abcx", false},
      {"/^$/", "", true},
      {"/^$/", "x", false},
      {"/ab*c/", "ac", true},
      {"/ab*c/", "abbbbc", true},
      {"/ab+c/", "ac", false},
      {"/ab+c/", "abbc", true},
      {"/colou?r/", "color", true},
      {"/colou?r/", "colour", true},
      {"/colou?r/", "colouur", false},
      {"/[0-9]+ ms$/", "took 125 ms", true},
      {"/[0-9]+ ms$/", "took x ms", false},
      {"/\\d\\d:\\d\\d/", "at 12:30", true},
      {"/[^a-z]x/", "ax", false},
      {"/[^a-z]x/", "1x", true},
      {"/\\./", "a.b", true},
      {"/\\./", "ab", false},
      {"/error .* failed/", "error in step 3: failed", true},
      {"/\\w+@\\w+/", "mail bob@example", true},
      {"/[]a]/", "]", true},
      {"/a\\$/", "a$", true},
      {"/x*/", "", true},
  };
  for (const auto& c : cases) EXPECT_EQ(M(c.q, c.line), c.match) << c.q << " on " << c.line;
}

TEST(Pattern, WhatItCannotDoIsAnErrorNamingIt) {
  for (const char* bad : {"/(a|b)/", "/a{3}/", "/*a/", "/[abc/", "/a\\/", "/[z-a]/"}) {
    auto p = Pattern::Parse(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.status().message().find("'q'"), std::string::npos) << p.status().message();
  }
  EXPECT_FALSE(Pattern::Parse(std::string(300, 'a')).ok());
}

// The pattern that makes a backtracking matcher take exponential time is linear here: the
// result is what matters (no timing assertion), and it comes back.
TEST(Pattern, PathologicalPatternsStayLinear) {
  std::string q = "/";
  for (int i = 0; i < 30; ++i) q += "a?";
  for (int i = 0; i < 30; ++i) q += "a";
  q += "$/";
  EXPECT_TRUE(M(q, std::string(30, 'a')));
  EXPECT_FALSE(M("/a*a*a*a*a*a*a*b/", std::string(100000, 'a')));
}

}  // namespace
}  // namespace drover::logs
