// Streaming exchanges over real sockets (tests/stream_harness.cc: the real transport and
// pipeline with streaming routes): bodies read piece by piece under a per-route limit,
// responses with a length or chunked, the socket handed over after a 101, and a handler
// cancelled when its client goes away.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <thread>

#include "client/client.h"
#include "testing/raw_http.h"
#include "testing/temp_dir.h"
#include "testing/test_server.h"

namespace drover {
namespace {

using testing::ReadUntil;
using testing::WriteAll;

class Stream : public ::testing::Test {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<testing::TestProcess>(
        testing::TestProcess::Program{STREAM_HARNESS},
        std::vector<std::string>{dir_.path(), dir_.File("addr")}, dir_.File("harness.log"));
    for (int i = 0; i < 600 && addr_.empty(); ++i) {
      std::ifstream in(dir_.File("addr"));
      std::getline(in, addr_);
      if (addr_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_FALSE(addr_.empty()) << harness_->Log();
    port_ = std::stoi(addr_.substr(addr_.rfind(':') + 1));
  }
  void TearDown() override { EXPECT_EQ(harness_->Stop(), 0) << harness_->Log(); }

  client::Client NewClient() { return client::Client({"http://" + addr_, ""}); }
  // The status line and body of the one response on `fd`.
  std::string Response(int fd) {
    std::string got;
    ReadUntil(fd, &got, "}");
    return got;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::TestProcess> harness_;
  std::string addr_;
  int port_ = 0;
};

// Sends `total` bytes of 'x' as the body, in 64 KiB writes.
void SendBody(int fd, uint64_t total, bool chunked) {
  std::string piece(64 * 1024, 'x');
  for (uint64_t sent = 0; sent < total;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(piece.size(), total - sent));
    std::string_view data(piece.data(), n);
    if (chunked) {
      char size[32];
      snprintf(size, sizeof size, "%zx\r\n", n);
      if (!WriteAll(fd, size) || !WriteAll(fd, data) || !WriteAll(fd, "\r\n")) return;
    } else if (!WriteAll(fd, data)) {
      return;
    }
    sent += n;
  }
  if (chunked) WriteAll(fd, "0\r\n\r\n");
}

TEST_F(Stream, ABodyIsReadPieceByPieceWithALengthOrChunked) {
  const uint64_t total = 64ull << 20;
  for (bool chunked : {false, true}) {
    int fd = testing::ConnectTo(port_);
    std::string head = "POST /count HTTP/1.1\r\nHost: x\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                    : "Content-Length: " + std::to_string(total) + "\r\n\r\n";
    ASSERT_TRUE(WriteAll(fd, head));
    SendBody(fd, total, chunked);
    std::string got = Response(fd);
    EXPECT_TRUE(got.starts_with("HTTP/1.1 200")) << got;
    EXPECT_NE(got.find("{\"bytes\":" + std::to_string(total) +
                       ",\"sum\":" + std::to_string(total * 'x') + "}"),
              std::string::npos)
        << got;
    // The connection is kept for the next request.
    ASSERT_TRUE(WriteAll(fd, "POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
    got = Response(fd);
    EXPECT_NE(got.find("{\"bytes\":3,\"sum\":294}"), std::string::npos) << got;
    close(fd);
  }
}

TEST_F(Stream, ABodyOverTheRoutesLimitIs413) {
  // Announced: refused before a byte of the body is read.
  std::string got = testing::RawExchange(
      port_, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413")) << got;
  // Chunked: refused once it passes the limit.
  int fd = testing::ConnectTo(port_);
  ASSERT_TRUE(
      WriteAll(fd, "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  SendBody(fd, 2 << 20, true);
  got = Response(fd);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 413")) << got;
  close(fd);
  // Under it: fine.
  auto r = NewClient().Do("POST", "/small", std::string(1000, 'y'));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "{\"bytes\":1000,\"sum\":121000}");
}

TEST_F(Stream, AResponseIsWrittenWithALengthOrChunked) {
  for (std::string q : {"", "&chunked"}) {
    auto r = NewClient().Do("GET", "/download?bytes=1000003" + q);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
    ASSERT_EQ(r->body.size(), 1000003u) << q;
    bool pattern = true;
    for (size_t i = 0; i < r->body.size(); ++i)
      pattern &= r->body[i] == static_cast<char>('a' + i % 26);
    EXPECT_TRUE(pattern) << q;
    if (q.empty()) {
      EXPECT_EQ(r->Header("Content-Length"), "1000003");
    } else {
      EXPECT_EQ(r->Header("Transfer-Encoding"), "chunked");
    }
  }
}

TEST_F(Stream, AnUpgradeHandsTheSocketToTheHandler) {
  int fd = testing::ConnectTo(port_);
  // Bytes sent right after the head (before the 101) reach the new owner too.
  ASSERT_TRUE(WriteAll(fd,
                       "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: "
                       "echo\r\n\r\nearly-bytes"));
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, &got, "early-bytes")) << got;
  EXPECT_TRUE(got.starts_with("HTTP/1.1 101")) << got;
  EXPECT_NE(got.find("Upgrade: echo"), std::string::npos) << got;
  ASSERT_TRUE(WriteAll(fd, "later"));
  ASSERT_TRUE(ReadUntil(fd, &got, "later")) << got;
  close(fd);
}

TEST_F(Stream, AClientThatGoesAwayCancelsItsHandler) {
  int fd = testing::ConnectTo(port_);
  ASSERT_TRUE(WriteAll(fd, "GET /tick HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got;
  ASSERT_TRUE(ReadUntil(fd, &got, ": tick")) << got;
  close(fd);
  auto c = NewClient();
  bool cancelled = false;
  for (int i = 0; i < 600 && !cancelled; ++i) {
    auto r = c.Do("GET", "/stats");
    cancelled = r.ok() && r->body == "{\"ticks_cancelled\":1}";
    if (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(cancelled);
}

}  // namespace
}  // namespace drover
