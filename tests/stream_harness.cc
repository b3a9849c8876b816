// A drover HTTP server (the real transport and pipeline) with streaming routes only, for the
// streaming tests (tests/stream_test.cc) and the memory benchmark (bench/stream.sh) until the
// product's own streaming routes (the gateway's proxy) exist:
//
//   POST /count             reads a streamed body (limit 4 GiB): {"bytes": N, "sum": S}
//   POST /small             the same with a 1 MiB limit (413 past it)
//   GET  /download?bytes=N  N bytes of a known pattern (&chunked: without Content-Length)
//   GET  /upgrade           101, then echoes the raw socket's bytes back
//   GET  /tick              server-sent comments every 50 ms until the client goes away
//   GET  /stats             {"ticks_cancelled": N}: /tick handlers ended by a departed client
//
// Usage: stream_harness DATA_DIR ADDR_FILE   (listens on a free loopback port, writes it)
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "http/metrics.h"
#include "http/pipeline.h"
#include "http/rate_limiter.h"
#include "http/server.h"
#include "http/sse.h"
#include "http/stream.h"

namespace asio = boost::asio;
using namespace drover;
using http::Exchange;
using http::Method;
using http::Response;

namespace {

std::atomic<int> g_ticks_cancelled{0};

// The harness has no keys: its routes are public.
class NoKeys final : public http::Authenticator {
 public:
  Result<std::shared_ptr<const http::Principal>> Authenticate(std::string_view) override {
    return Status::Unauthenticated("this server has no keys");
  }
};

// The byte at `i` of a download: a pattern a reader can check.
char PatternAt(uint64_t i) { return static_cast<char>('a' + i % 26); }

asio::awaitable<void> Count(Exchange& ex) {
  uint64_t bytes = 0, sum = 0;
  std::string piece;
  for (;;) {
    auto more = co_await ex.ReadBody(piece);
    if (!more.ok()) {
      co_await ex.Reply(Response::Problem(more.status()));
      co_return;
    }
    bytes += piece.size();
    for (unsigned char c : piece) sum += c;
    if (!*more) break;
  }
  co_await ex.Reply(Response::Json(
      200, "{\"bytes\":" + std::to_string(bytes) + ",\"sum\":" + std::to_string(sum) + "}"));
}

asio::awaitable<void> Download(Exchange& ex) {
  auto n = ex.request().Query("bytes");
  uint64_t total = n ? std::stoull(*n) : 0;
  bool chunked = ex.request().Query("chunked").has_value();
  Response head;
  head.content_type = "application/octet-stream";
  if (!co_await ex.Begin(std::move(head), chunked ? std::nullopt : std::optional(total))) {
    co_return;
  }
  std::string piece;
  for (uint64_t at = 0; at < total;) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(64 * 1024, total - at));
    piece.resize(len);
    for (size_t i = 0; i < len; ++i) piece[i] = PatternAt(at + i);
    if (!co_await ex.Write(piece)) co_return;
    at += len;
  }
}

asio::awaitable<void> Echo(asio::ip::tcp::socket socket, std::string pending) {
  if (!pending.empty()) {
    co_await asio::async_write(socket, asio::buffer(pending), asio::as_tuple(asio::use_awaitable));
  }
  char buf[4096];
  for (;;) {
    auto [ec, n] =
        co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(buf, n),
                                                asio::as_tuple(asio::use_awaitable));
    if (wec) co_return;
  }
}

asio::awaitable<void> Upgrade(Exchange& ex) {
  Response head;
  head.status = 101;
  head.AddHeader("Connection", "Upgrade");
  head.AddHeader("Upgrade", "echo");
  auto up = co_await ex.Upgrade(std::move(head));
  if (!up.ok()) co_return;
  auto exec = up->socket.get_executor();
  asio::co_spawn(exec, Echo(std::move(up->socket), std::move(up->pending)), asio::detached);
}

asio::awaitable<void> Tick(Exchange& ex) {
  if (!co_await http::BeginSse(ex)) co_return;
  asio::steady_timer timer(ex.executor());
  try {
    for (;;) {
      timer.expires_after(std::chrono::milliseconds(50));
      co_await timer.async_wait(asio::use_awaitable);
      if (!co_await ex.Write(http::FormatSseComment("tick"))) break;  // noticed by a write
    }
  } catch (const boost::system::system_error&) {
    g_ticks_cancelled.fetch_add(1);  // noticed by the transport: the wait was cancelled
    throw;
  }
  g_ticks_cancelled.fetch_add(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: stream_harness DATA_DIR ADDR_FILE\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  // Before any thread starts, so every thread inherits the mask and sigwait below gets them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  NoKeys keys;  // every route here is public
  http::RateLimiter limiter;
  http::Router router;
  using http::Access;
  http::AddStreamRoute(router, Method::kPost, "/count", Access::kPublic, Count,
                       {.body = true, .body_limit = uint64_t{4} << 30});
  http::AddStreamRoute(router, Method::kPost, "/small", Access::kPublic, Count,
                       {.body = true, .body_limit = 1 << 20});
  http::AddStreamRoute(router, Method::kGet, "/download", Access::kPublic, Download);
  http::AddStreamRoute(router, Method::kGet, "/upgrade", Access::kPublic, Upgrade,
                       {.body = true, .body_limit = 0});
  http::AddStreamRoute(router, Method::kGet, "/tick", Access::kPublic, Tick);
  router.Add(Method::kGet, "/stats", Access::kPublic, [](http::Request&, http::Responder r) {
    r(Response::Json(200,
                     "{\"ticks_cancelled\":" + std::to_string(g_ticks_cancelled.load()) + "}"));
  });
  std::vector<std::pair<std::string, std::string>> names;
  for (const auto& r : router.routes()) {
    names.emplace_back(std::string(http::MethodName(r.method)), r.pattern);
  }
  http::Metrics metrics(std::move(names));
  http::PipelineOptions po;
  po.access_log = false;
  http::Pipeline pipeline(router, metrics, keys, limiter, SystemClock::Get(), po);
  http::ServerOptions opts;
  opts.listen = "127.0.0.1:0";
  opts.threads = 2;
  http::Server server(opts, pipeline);
  if (Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  {
    std::ofstream(std::string(argv[2]) + ".tmp") << server.BoundAddress() << "\n";
    std::rename((std::string(argv[2]) + ".tmp").c_str(), argv[2]);
  }
  int sig = 0;
  sigwait(&set, &sig);
  server.Stop();
  return 0;
}
