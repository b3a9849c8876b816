#include "http/sse.h"

#include <gtest/gtest.h>

namespace drover::http {
namespace {

TEST(SseTest, AnEventHasItsIdNameAndOneDataLinePerLine) {
  EXPECT_EQ(FormatSseEvent("7", "reset", "{\"a\":1}"), "id: 7\nevent: reset\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(FormatSseEvent("", "", "one\ntwo\r\nthree\rfour"),
            "data: one\ndata: two\ndata: three\ndata: four\n\n");
}

TEST(SseTest, EmptyDataIsOneEmptyDataLine) {
  EXPECT_EQ(FormatSseEvent("1", "", ""), "id: 1\ndata: \n\n");
  EXPECT_EQ(FormatSseEvent("", "", "x\n"), "data: x\ndata: \n\n");
}

TEST(SseTest, LineBreaksCannotStartANewFieldInAnIdOrName) {
  EXPECT_EQ(FormatSseEvent("1\ndata: evil", "a\rb", "d"),
            "id: 1 data: evil\nevent: a b\ndata: d\n\n");
  EXPECT_EQ(FormatSseComment("hi\nthere"), ": hi there\n\n");
}

}  // namespace
}  // namespace drover::http
