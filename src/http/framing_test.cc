#include "http/framing.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>

namespace drover::http {
namespace {

// The head of `raw` through Beast's parser, then our framing rule.
std::string Framing(const std::string& raw) {
  RequestParser p;
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw), ec);
  if (!p.is_header_done()) return "unparsed: " + ec.message();
  return CheckFraming(p);
}

TEST(Framing, TransferEncodingMustEndWithChunked) {
  EXPECT_EQ(Framing("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), "");
  EXPECT_EQ(Framing("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), "");
  EXPECT_EQ(Framing("POST / HTTP/1.1\r\nTransfer-Encoding: ChUnKeD\r\n\r\n"), "");
  for (const char* te : {"identity", "gzip", "xchunked", "chunked, identity"}) {
    EXPECT_TRUE(Framing(std::string("POST / HTTP/1.1\r\nTransfer-Encoding: ") + te +
                        "\r\nContent-Length: 3\r\n\r\n")
                    .starts_with("400 "))
        << te;
  }
  EXPECT_TRUE(
      Framing("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").starts_with("501 "));
}

TEST(Framing, TargetsSplitIntoPathAndQueryAbsoluteFormToo) {
  auto split = [](std::string_view t) {
    Request r;
    SplitTarget(t, r);
    return std::string(r.path) + "|" + std::string(r.query);
  };
  EXPECT_EQ(split("/v1/x?a=1"), "/v1/x|a=1");
  EXPECT_EQ(split("http://host:7400/v1/x?a=1"), "/v1/x|a=1");
  EXPECT_EQ(split("HTTP://host"), "/|");
  // Found by http_request_fuzz: a scheme differing only in case, with nothing after it.
  EXPECT_EQ(split("htTp://"), "/|");
  EXPECT_EQ(split("https://h?x"), "/|");
  EXPECT_EQ(split("*"), "*|");
}

}  // namespace
}  // namespace drover::http
