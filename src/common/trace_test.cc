#include "common/trace.h"

#include <gtest/gtest.h>

namespace drover {
namespace {

TEST(Trace, NewChildAndValidTraceparents) {
  std::string t = NewTraceparent();
  EXPECT_TRUE(ValidTraceparent(t)) << t;
  EXPECT_NE(NewTraceparent(), t);
  std::string c = ChildTraceparent(t);
  EXPECT_TRUE(ValidTraceparent(c));
  EXPECT_EQ(TraceIdOf(c), TraceIdOf(t));          // the same trace
  EXPECT_NE(c.substr(36, 16), t.substr(36, 16));  // a new span
  EXPECT_EQ(TraceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}) {
    EXPECT_FALSE(ValidTraceparent(bad)) << bad;
    EXPECT_EQ(TraceIdOf(bad), "");
    EXPECT_TRUE(ValidTraceparent(ChildTraceparent(bad)));  // a new trace instead
  }
}

}  // namespace
}  // namespace drover
