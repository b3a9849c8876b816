#include "queues/receipt.h"

#include <gtest/gtest.h>

namespace drover::queues {
namespace {

TEST(Receipt, RoundTripsAndCarriesTheFifoBit) {
  for (bool fifo : {false, true}) {
    int64_t nonce = NewNonce(fifo);
    EXPECT_EQ(IsFifoNonce(nonce), fifo);
    std::string r = EncodeReceipt(1234567, nonce);
    EXPECT_EQ(r.size(), 22u);
    auto back = DecodeReceipt(r);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->first, 1234567);
    EXPECT_EQ(back->second, nonce);
  }
}

TEST(Receipt, NoncesDiffer) { EXPECT_NE(NewNonce(false), NewNonce(false)); }

TEST(Receipt, RefusesWhatItDidNotMake) {
  for (std::string_view bad : {"", "abc", "AAAAAAAAAAAAAAAAAAAAAA", "!!!!!!!!!!!!!!!!!!!!!!",
                               "AAAAAAAAAAAAAAAAAAAAAAA", "/////////////////////w"}) {
    EXPECT_FALSE(DecodeReceipt(bad)) << bad;
  }
}

}  // namespace
}  // namespace drover::queues
