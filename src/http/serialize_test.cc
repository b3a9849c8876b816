#include "http/serialize.h"

#include <gtest/gtest.h>

namespace drover::http {
namespace {

TEST(Serialize, JsonResponseWithHeaders) {
  Response r = Response::Json(201, "{\"a\":1}");
  r.AddHeader("X-Drover-Index", "7");
  std::string out = "stale";
  SerializeResponse(r, 11, true, false, out);
  EXPECT_EQ(out,
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Drover-Index: 7\r\n"
            "Content-Length: 7\r\n\r\n{\"a\":1}");
}

TEST(Serialize, SharedPreparedHeadersFollowTheOthers) {
  Response r = Response::Json(200, "{}");
  r.AddHeader("X-Request-Id", "r1");
  r.extra_headers = std::make_shared<const std::string>("cc-a-ref: main\r\nETag: \"3\"\r\n");
  std::string out;
  SerializeResponse(r, 11, true, false, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: r1\r\n"
            "cc-a-ref: main\r\nETag: \"3\"\r\nContent-Length: 2\r\n\r\n{}");
}

TEST(Serialize, HeadKeepsLengthDropsBody) {
  Response r = Response::Json(200, "hello");
  std::string out;
  SerializeResponse(r, 11, true, true, out);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n");
}

TEST(Serialize, NoContentAndConnectionHandling) {
  Response r;
  r.status = 204;
  std::string out;
  SerializeResponse(r, 11, false, false, out);
  EXPECT_EQ(out, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  SerializeResponse(Response::Json(200, "x"), 10, true, false, out);
  EXPECT_EQ(out,
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1\r\n"
            "Connection: keep-alive\r\n\r\nx");
}

}  // namespace
}  // namespace drover::http
