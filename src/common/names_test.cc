#include "common/names.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(Names, Valid) {
  for (const char* ok : {"a", "0", "sim-eu", "cc-a-repository", "a1-b2"}) {
    EXPECT_TRUE(IsValidName(ok)) << ok;
  }
  EXPECT_TRUE(IsValidName(std::string(63, 'a')));
}

TEST(Names, Invalid) {
  for (const char* bad : {"", "-a", "A", "a_b", "a.b", "a b", "é", "a/b"}) {
    EXPECT_FALSE(IsValidName(bad)) << bad;
  }
  EXPECT_FALSE(IsValidName(std::string(64, 'a')));
}

}  // namespace
}  // namespace drover
