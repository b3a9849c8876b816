#include "http/server.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/text.h"
#include "http/framing.h"
#include "http/serialize.h"

namespace drover::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Suspends the session until the handler's response is ready, resuming on the session's thread.
template <typename Token>
auto AsyncAwaitReply(const Responder& responder, asio::any_io_executor ex, Token&& token) {
  return asio::async_initiate<Token, void()>(
      [responder, ex](auto handler) {
        auto h = std::make_shared<std::decay_t<decltype(handler)>>(std::move(handler));
        responder.OnReady([h, ex] { asio::post(ex, [h]() mutable { (*h)(); }); });
      },
      token);
}

}  // namespace

struct Server::Impl {
  // Per-connection state shared with Stop(), which closes connections that are waiting idle.
  struct Conn {
    beast::tcp_stream* stream = nullptr;
    bool idle = true;  // only touched on the connection's own thread
  };

  ServerOptions opts;
  Pipeline& pipeline;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::thread> threads;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> next_ctx{0};
  std::string bound;

  std::mutex mu;
  std::condition_variable cv;
  uint64_t next_conn = 0;
  std::unordered_map<uint64_t, std::pair<asio::io_context*, std::shared_ptr<Conn>>> conns;
  bool stopped = false;
  int max_connections = 0;               // resolved at Start
  std::atomic<int> open_connections{0};  // sessions accepted and not yet ended

  Impl(ServerOptions o, Pipeline& p) : opts(std::move(o)), pipeline(p) {}

  asio::awaitable<void> Accept() {
    auto backoff = std::chrono::milliseconds(10);
    auto last_warning = std::chrono::steady_clock::time_point{};
    uint64_t failures = 0;
    for (;;) {
      auto& ctx = *contexts[next_ctx.fetch_add(1) % contexts.size()];
      auto [ec, socket] = co_await acceptor->async_accept(ctx, kTuple);
      if (stopping) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // E.g. out of file descriptors: back off (10 ms doubling to 1 s) instead of spinning,
        // and warn at most every 10 s with the count.
        ++failures;
        auto now = std::chrono::steady_clock::now();
        if (now - last_warning >= std::chrono::seconds(10)) {
          LogWarn("accept failed: {} ({} times since the last warning); retrying with backoff",
                  ec.message(), failures);
          last_warning = now;
          failures = 0;
        }
        asio::steady_timer pause(co_await asio::this_coro::executor, backoff);
        co_await pause.async_wait(kTuple);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        continue;
      }
      backoff = std::chrono::milliseconds(10);
      // Counted here, not when the session first runs, so a burst cannot pass the cap.
      if (open_connections.fetch_add(1) >= max_connections) {
        --open_connections;
        asio::co_spawn(ctx, RefuseConnection(std::move(socket)), asio::detached);
        continue;
      }
      asio::co_spawn(ctx, Session(std::move(socket), &ctx), asio::detached);
    }
  }

  // Over --max-connections: a 503 with Retry-After, then close (nothing of the request is read).
  // It goes through the pipeline's Finish like any answer: request id, metrics, access log.
  asio::awaitable<void> RefuseConnection(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    Request req;
    pipeline.AssignRequestId(req);
    auto r = Response::Problem(Status::Unavailable("too many open connections; retry later"));
    std::string out;
    co_await Write(stream, out, req, r, 11, false, -1, std::chrono::steady_clock::now());
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  uint64_t Register(asio::io_context* ctx, std::shared_ptr<Conn> c) {
    std::lock_guard lock(mu);
    conns.emplace(++next_conn, std::make_pair(ctx, std::move(c)));
    return next_conn;
  }
  void Unregister(uint64_t id) {
    --open_connections;
    std::lock_guard lock(mu);
    conns.erase(id);
    cv.notify_all();
  }

  // Writes `resp` for `req` and reports whether the connection may be reused. The response is
  // serialized by hand into the connection's reused buffer: one allocation-free pass and one
  // write, instead of Beast's serializer with its per-field allocations.
  asio::awaitable<bool> Write(beast::tcp_stream& stream, std::string& out, const Request& req,
                              Response& resp, unsigned version, bool keep_alive, int route,
                              std::chrono::steady_clock::time_point start) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    pipeline.Finish(req, route, resp, secs);
    if (stopping) keep_alive = false;
    SerializeResponse(resp, version, keep_alive, req.method == Method::kHead, out);
    stream.expires_after(opts.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
    co_return !ec && keep_alive;
  }

  // After answering a request whose body we refused, keep reading (and dropping) what the client
  // is still sending for a short while, so it sees our answer instead of a reset (like nginx's
  // lingering close).
  asio::awaitable<void> LingeringClose(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    static thread_local char sink[16384];
    size_t total = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (total < 64 * opts.body_limit && std::chrono::steady_clock::now() < deadline) {
      stream.expires_at(deadline);
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      total += n;
    }
  }

  // What the transport knows of a request it answers itself (malformed, too large): method and
  // path for the access log, and a request id (the client's, when sane).
  void DescribeRequest(const bhttp::request_parser<bhttp::string_body>& parser, Request& req) {
    req.Reset();
    const auto& h = parser.get();
    req.method = ParseMethod(h.method_string());
    for (const auto& f : h) req.headers.emplace_back(f.name_string(), f.value());
    SplitTarget(h.target(), req);
    pipeline.AssignRequestId(req);
  }

  // Answers `status` for a request the transport refuses and closes the connection: a body over
  // the limit (413, then a lingering close) or a malformed request (400).
  asio::awaitable<void> Refuse(beast::tcp_stream& stream, std::string& out, Request& req,
                               int status, std::string detail, unsigned version,
                               std::chrono::steady_clock::time_point start) {
    auto r = Response::Problem(status, "", detail);
    co_await Write(stream, out, req, r, version, false, -1, start);
    if (status == 413) co_await LingeringClose(stream);
  }

  asio::awaitable<void> Session(tcp::socket socket, asio::io_context* ctx) {
    beast::tcp_stream stream(std::move(socket));
    auto conn = std::make_shared<Conn>();
    conn->stream = &stream;
    uint64_t id = Register(ctx, conn);
    beast::flat_buffer buffer;
    std::string out;  // serialized responses; capacity reused across requests
    Request req;      // likewise: its vectors keep their capacity
    req.headers.reserve(16);
    for (;;) {
      conn->idle = true;
      if (stopping) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(opts.body_limit);
      parser.header_limit(32 * 1024);
      if (buffer.size() == 0) {
        // Waiting for the next request: the idle timeout, until its first byte arrives.
        stream.expires_after(opts.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(8192), kTuple);
        if (ec) break;  // closed, reset, idle too long or stopping: nothing to answer
        buffer.commit(n);
      }
      conn->idle = false;
      // From the first byte, the whole head must arrive within the header timeout
      // (slow-header clients cannot hold a connection).
      auto start = std::chrono::steady_clock::now();
      stream.expires_after(opts.header_timeout);
      auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
      if (ec == bhttp::error::body_limit) {  // Content-Length already over the limit
        DescribeRequest(parser, req);
        co_await Refuse(stream, out, req, 413, TooLarge(), 11, start);
        break;
      }
      if (ec) {
        // A request that is not HTTP gets a 400 (431 for a huge head); a client that closed,
        // went silent or was cut off by a stop gets nothing.
        bool malformed =
            ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
            ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
        if (malformed && !stopping) {
          DescribeRequest(parser, req);
          co_await Refuse(stream, out, req, ec == bhttp::error::header_limit ? 431 : 400,
                          "malformed HTTP request: " + ec.message(), 11, start);
        }
        break;
      }
      auto& header = parser.get();
      if (std::string why = CheckFraming(parser); !why.empty()) {
        DescribeRequest(parser, req);
        co_await Refuse(stream, out, req, why.starts_with("501") ? 501 : 400, why.substr(4),
                        header.version(), start);
        break;
      }
      if (parser.content_length() && *parser.content_length() > opts.body_limit) {
        DescribeRequest(parser, req);
        co_await Refuse(stream, out, req, 413, TooLarge(), header.version(), start);
        break;
      }
      if (EqualsIgnoreCase(header[bhttp::field::expect], "100-continue")) {
        bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, header.version()};
        stream.expires_after(opts.write_timeout);
        auto [wec, wn] = co_await bhttp::async_write(stream, cont, kTuple);
        if (wec) break;
      }
      if (!parser.is_done()) {
        stream.expires_after(opts.read_timeout);
        auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
        if (rec) {
          if (rec == bhttp::error::body_limit) {  // a chunked body grew over the limit
            DescribeRequest(parser, req);
            co_await Refuse(stream, out, req, 413, TooLarge(), header.version(), start);
          } else if (rec.category() == bhttp::make_error_code(bhttp::error::bad_chunk).category() &&
                     rec != bhttp::error::partial_message && !stopping) {
            // A malformed chunk size or trailer: the client gets told, then the connection
            // closes (where the next request would start is unknown).
            DescribeRequest(parser, req);
            co_await Refuse(stream, out, req, 400, "malformed request body: " + rec.message(),
                            header.version(), start);
          }
          break;
        }
      }
      auto& msg = parser.get();
      req.Reset();
      req.method = ParseMethod(msg.method_string());
      SplitTarget(msg.target(), req);
      for (const auto& f : msg) req.headers.emplace_back(f.name_string(), f.value());
      req.body = std::move(msg.body());
      bool keep_alive = msg.keep_alive();
      unsigned version = msg.version();

      pipeline.metrics().AddInFlight(1);
      Responder responder;
      int route = -1;
      pipeline.Dispatch(req, responder, &route);
      // Most handlers answer before Dispatch returns: only wait (and hop through the
      // scheduler) when the answer comes later, e.g. after a group commit.
      if (!responder.ready()) {
        co_await AsyncAwaitReply(responder, stream.get_executor(), asio::use_awaitable);
      }
      Response resp = responder.Take();
      pipeline.metrics().AddInFlight(-1);
      if (!co_await Write(stream, out, req, resp, version, keep_alive, route, start)) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    conn->stream = nullptr;
    Unregister(id);
  }

  std::string TooLarge() const {
    return fmt::format("request body exceeds the limit of {} bytes", opts.body_limit);
  }
};

Server::Server(ServerOptions options, Pipeline& pipeline)
    : impl_(std::make_unique<Impl>(std::move(options), pipeline)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  auto& o = impl_->opts;
  auto colon = o.listen.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("--listen must be host:port, got '" + o.listen + "'");
  }
  std::string host = o.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(o.listen.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) {
    return Status::InvalidArgument("--listen has a bad port: '" + o.listen + "'");
  }
  impl_->max_connections = o.max_connections;
  if (impl_->max_connections <= 0) {
    rlimit rl{};
    rlim_t files = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
    impl_->max_connections = static_cast<int>(std::clamp<rlim_t>(files / 4 * 3, 16, 16384));
  }
  int n = o.threads > 0 ? o.threads
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Status::InvalidArgument("--listen has a bad address: '" + host + "'");
  tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  auto acc = std::make_unique<tcp::acceptor>(*impl_->contexts[0]);
  acc->open(ep.protocol(), ec);
  if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::Unavailable(fmt::format("cannot listen on {}: {}", o.listen, ec.message()));
  auto local = acc->local_endpoint();
  impl_->bound = fmt::format("{}:{}", local.address().to_string(), local.port());
  impl_->acceptor = std::move(acc);
  asio::co_spawn(*impl_->contexts[0], impl_->Accept(), asio::detached);
  for (auto& ctx : impl_->contexts) {
    impl_->threads.emplace_back([c = ctx.get()] {
      auto guard = asio::make_work_guard(*c);
      c->run();
    });
  }
  return Status::Ok();
}

std::string Server::BoundAddress() const { return impl_->bound; }

void Server::Stop() {
  auto& im = *impl_;
  if (im.threads.empty() || im.stopping.exchange(true)) return;
  asio::post(*im.contexts[0], [&im] {
    boost::system::error_code ec;
    im.acceptor->close(ec);
  });
  auto deadline = std::chrono::steady_clock::now() + im.opts.drain_timeout;
  std::unique_lock lock(im.mu);
  for (;;) {
    // Idle connections are closed now; busy ones close after their response.
    for (auto& [id, entry] : im.conns) {
      auto conn = entry.second;
      asio::post(*entry.first, [conn] {
        if (conn->idle && conn->stream) conn->stream->cancel();
      });
    }
    if (im.conns.empty()) break;
    if (im.cv.wait_until(
            lock,
            std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)),
            [&] { return im.conns.empty(); })) {
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      LogWarn("{} connections still busy after the drain timeout; closing them", im.conns.size());
      break;
    }
  }
  lock.unlock();
  for (auto& ctx : im.contexts) ctx->stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
}

}  // namespace drover::http
