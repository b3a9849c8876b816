#include "common/random.h"

#include <gtest/gtest.h>

#include <set>

namespace drover {
namespace {

TEST(Random, HexAndBase64HaveTheRightShapeAndDiffer) {
  EXPECT_EQ(RandomHex(16).size(), 32u);
  EXPECT_EQ(RandomBase64Url(32).size(), 43u);  // 256 bits
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(RandomBase64Url(16));
  EXPECT_EQ(seen.size(), 100u);
  for (char c : RandomBase64Url(64)) EXPECT_TRUE(std::isalnum(c) || c == '-' || c == '_');
}

TEST(Random, Sha256KnownAnswer) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Random, Base64UrlRoundTripsAndRejectsOtherCharacters) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(all)), all);
  EXPECT_EQ(Base64UrlDecode("Zm9v+"), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zm9v="), std::nullopt);
}

TEST(Random, ConstantTimeEqual) {
  EXPECT_TRUE(ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abcd"));
}

}  // namespace
}  // namespace drover
