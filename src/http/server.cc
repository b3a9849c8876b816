#include "http/server.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/text.h"
#include "http/framing.h"
#include "http/handler_util.h"
#include "http/serialize.h"
#include "http/stream.h"

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

// Runs `fn` on `pool` (or here without one) and resumes on `ex`; false when the pool refused it
// or it waited too long to start (then it did not run).
asio::awaitable<bool> RunOnPool(runtime::BlockingPool* pool, asio::any_io_executor ex,
                                std::function<void()> fn) {
  if (!pool) {
    fn();
    co_return true;
  }
  auto ran = std::make_shared<bool>(false);
  bool queued = false;
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&](auto handler) {
        auto h = std::make_shared<std::decay_t<decltype(handler)>>(std::move(handler));
        queued = pool->TrySubmit([h, ex, ran, fn = std::move(fn)](bool in_time) {
          if (in_time) {
            fn();
            *ran = true;
          }
          asio::post(ex, [h]() mutable { (*h)(); });
        });
        if (!queued) asio::post(ex, [h]() mutable { (*h)(); });
      },
      asio::use_awaitable);
  co_return *ran;
}

}  // namespace

struct Server::Impl {
  // Per-connection state shared with Stop(), which closes connections that are waiting idle.
  struct Conn {
    beast::tcp_stream* stream = nullptr;
    bool idle = true;        // only touched on the connection's own thread
    bool streaming = false;  // a streaming handler runs: a stop cancels it
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
    ReadHead(parser.get(), req);
    pipeline.AssignRequestId(req);
  }

  // Method, target and header views of a parsed head.
  template <typename Header>
  static void ReadHead(const Header& h, Request& req) {
    req.Reset();
    req.method = ParseMethod(h.method_string());
    for (const auto& f : h) req.headers.emplace_back(f.name_string(), f.value());
    SplitTarget(h.target(), req);
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
    {
      // Answers are written whole, or a streamed answer's pieces as they come: never hold
      // one back waiting for an ACK (Nagle's algorithm with delayed ACKs costs 40 ms).
      boost::system::error_code nd;
      socket.set_option(tcp::no_delay(true), nd);
    }
    beast::tcp_stream stream(std::move(socket));
    auto conn = std::make_shared<Conn>();
    conn->stream = &stream;
    uint64_t id = Register(ctx, conn);
    beast::flat_buffer buffer;
    std::string out;  // serialized responses; capacity reused across requests
    Request req;      // likewise: its vectors keep their capacity
    req.headers.reserve(16);
    {
      boost::system::error_code peer_ec;
      auto peer = stream.socket().remote_endpoint(peer_ec);
      if (!peer_ec) req.peer = peer.address().to_string();
    }
    bool upgraded = false;
    for (;;) {
      conn->idle = true;
      if (stopping) break;
      bhttp::request_parser<bhttp::string_body> parser;
      // The limit depends on the route, known after the head: checked below.
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
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
      // A head usually arrives whole in one read: parsed here, without another asynchronous
      // step (the parser takes nothing until the head is complete).
      boost::system::error_code ec;
      buffer.consume(parser.put(buffer.data(), ec));
      if (ec == bhttp::error::need_more) ec = {};
      if (!ec && !parser.is_header_done()) {
        stream.expires_after(opts.header_timeout);
        auto [rec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kTuple);
        ec = rec;
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
      ReadHead(header, req);  // the body may still be unread
      Match match = pipeline.Lookup(req);
      const Route* route = pipeline.RouteOf(match);
      const StreamRoute* streaming = route ? route->stream.get() : nullptr;
      bool stream_body = streaming && streaming->options.body;
      std::uint64_t limit = opts.body_limit;
      if (stream_body) {
        limit = streaming->options.body_limit ? streaming->options.body_limit
                                              : std::numeric_limits<std::uint64_t>::max();
      }
      if (parser.content_length() && *parser.content_length() > limit) {
        co_await Refuse(stream, out, req, 413, TooLarge(limit), header.version(), start);
        break;
      }
      parser.body_limit(limit);
      bool expect_continue = EqualsIgnoreCase(header[bhttp::field::expect], "100-continue");
      unsigned version = header.version();
      bool keep_alive = header.keep_alive();
      if (!stream_body) {
        if (expect_continue && !parser.is_done()) {
          if (!co_await SendContinue(stream, version)) break;
        }
        if (!parser.is_done()) {
          stream.expires_after(opts.read_timeout);
          auto [rec, rn] = co_await bhttp::async_read(stream, buffer, parser, kTuple);
          if (rec) {
            if (rec == bhttp::error::body_limit) {  // a chunked body grew over the limit
              co_await Refuse(stream, out, req, 413, TooLarge(limit), version, start);
            } else if (rec.category() ==
                           bhttp::make_error_code(bhttp::error::bad_chunk).category() &&
                       rec != bhttp::error::partial_message && !stopping) {
              // A malformed chunk size or trailer: the client gets told, then the connection
              // closes (where the next request would start is unknown).
              co_await Refuse(stream, out, req, 400, "malformed request body: " + rec.message(),
                              version, start);
            }
            break;
          }
        }
        req.body = std::move(parser.get().body());
      }

      if (streaming) {
        conn->streaming = true;
        Outcome o = co_await RunStream(stream, buffer, parser, req, std::move(match), *streaming,
                                       version, keep_alive, expect_continue, start, out);
        conn->streaming = false;
        if (o == Outcome::kUpgraded) upgraded = true;
        if (o != Outcome::kKeep) break;
        continue;
      }

      pipeline.metrics().AddInFlight(1);
      Responder responder;
      int route_index = match.route;
      if (opts.store_pool && route && route->may_block && !pipeline.RunsFromMemory(req, *route)) {
        // Its key check and handler may wait on the store: on the pool, never on this thread.
        req.EnableCancel();
        auto m = std::make_shared<Match>(std::move(match));
        bool queued = opts.store_pool->TrySubmit([this, &req, responder, m](bool in_time) {
          if (!in_time) return responder(Busy());
          pipeline.Dispatch(req, responder, std::move(*m));
        });
        if (!queued) responder(Busy());
      } else {
        pipeline.Dispatch(req, responder, std::move(match));
      }
      // Most handlers answer before Dispatch returns: only wait (and hop through the
      // scheduler) when the answer comes later, e.g. after a group commit.
      bool gone = false;
      if (!responder.ready()) {
        if (req.cancellable()) {
          // A parked request (a blocking read): give up early if the client goes away.
          using namespace asio::experimental::awaitable_operators;
          co_await (AsyncAwaitReply(responder, stream.get_executor(), asio::use_awaitable) ||
                    WatchClient(stream, buffer, req, &gone));
        } else {
          co_await AsyncAwaitReply(responder, stream.get_executor(), asio::use_awaitable);
        }
      }
      if (gone && !responder.ready()) {
        // The handler still runs (on the store pool) and uses the request: wait for it.
        co_await AsyncAwaitReply(responder, stream.get_executor(), asio::use_awaitable);
      }
      Response resp = responder.Take();
      pipeline.metrics().AddInFlight(-1);
      if (gone) {
        // Nobody to answer: logged as nginx does, 499 "client closed request".
        resp.status = 499;
        double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        pipeline.Finish(req, route_index, resp, secs);
        break;
      }
      if (!co_await Write(stream, out, req, resp, version, keep_alive, route_index, start)) break;
    }
    if (!upgraded) {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    conn->stream = nullptr;
    Unregister(id);
  }

  asio::awaitable<bool> SendContinue(beast::tcp_stream& stream, unsigned version) {
    bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, version};
    stream.expires_after(opts.write_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, cont, kTuple);
    co_return !wec;
  }

  // Watches a connection whose request is being handled without reading from it: returns when
  // the client goes away (setting *gone and cancelling the request), when the server stops, or
  // when cancelled because the handler finished first. Bytes a client pipelines meanwhile are
  // kept for the next request (up to 64 KiB; then it stops reading until the answer).
  asio::awaitable<void> WatchClient(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                    const Request& req, bool* gone) {
    auto& socket = stream.socket();
    for (;;) {
      if (buffer.size() >= 64 * 1024) {
        asio::steady_timer forever(co_await asio::this_coro::executor,
                                   std::chrono::steady_clock::time_point::max());
        co_await forever.async_wait(kTuple);
        co_return;
      }
      auto [ec, n] = co_await socket.async_read_some(buffer.prepare(4096), kTuple);
      if (ec == asio::error::operation_aborted && !stopping) co_return;
      if (ec) {
        *gone = true;
        req.Cancel();
        co_return;
      }
      buffer.commit(n);
    }
  }

  enum class Outcome { kKeep, kClose, kUpgraded };
  struct StreamExchange;
  asio::awaitable<Outcome> RunStream(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     bhttp::request_parser<bhttp::string_body>& parser,
                                     Request& req, Match match, const StreamRoute& route,
                                     unsigned version, bool keep_alive, bool expect_continue,
                                     std::chrono::steady_clock::time_point start, std::string& out);

  std::string TooLarge(std::uint64_t limit) const {
    return fmt::format("request body exceeds the limit of {} bytes", limit);
  }
};

// The exchange a streaming handler drives: the connection's stream and buffer, the parser (its
// body read on demand through a buffer_body parser) and the response framing.
struct Server::Impl::StreamExchange final : Exchange {
  using BodyParser = bhttp::request_parser<bhttp::buffer_body>;

  Impl& server;
  beast::tcp_stream& stream;
  beast::flat_buffer& buffer;
  bhttp::request_parser<bhttp::string_body>& head_parser;
  std::optional<BodyParser> body_parser;  // once the handler reads the body
  Request& req;
  int route;
  unsigned version;
  bool keep_alive;
  bool expect_continue;
  bool stream_body;
  std::chrono::steady_clock::time_point start;
  std::string& out;

  bool began_ = false;
  bool ended = false;
  bool upgraded = false;
  bool gone = false;          // the client went away (or a write failed)
  bool head_pending = false;  // Begin(defer): the head in `out` is not sent yet
  bool watched = false;       // the transport is reading the socket: no Upgrade
  BodyFraming framing = BodyFraming::kNone;
  std::uint64_t length = 0;   // kLength: promised bytes
  std::uint64_t written = 0;  // body bytes written

  StreamExchange(Impl& s, beast::tcp_stream& st, beast::flat_buffer& b,
                 bhttp::request_parser<bhttp::string_body>& p, Request& r, int rt, unsigned v,
                 bool ka, bool ec, bool sb, std::chrono::steady_clock::time_point t0,
                 std::string& o)
      : server(s),
        stream(st),
        buffer(b),
        head_parser(p),
        req(r),
        route(rt),
        version(v),
        keep_alive(ka),
        expect_continue(ec),
        stream_body(sb),
        start(t0),
        out(o) {}

  Request& request() override { return req; }
  asio::any_io_executor executor() override { return stream.get_executor(); }
  bool began() const override { return began_; }

  bool body_done() const { return body_parser ? body_parser->is_done() : head_parser.is_done(); }

  asio::awaitable<Result<bool>> ReadBody(std::string& piece) override {
    piece.clear();
    if (!stream_body) co_return false;  // the transport read it into request().body
    if (!body_parser) {
      body_parser.emplace(std::move(head_parser));
      if (expect_continue && !body_parser->is_done()) {
        if (!co_await server.SendContinue(stream, version)) {
          gone = true;
          co_return Status::Unavailable("the client went away");
        }
      }
    }
    if (body_parser->is_done()) co_return false;
    constexpr std::size_t kPiece = 64 * 1024;
    piece.resize(kPiece);
    auto& body = body_parser->get().body();
    body.data = piece.data();
    body.size = kPiece;
    stream.expires_after(server.opts.read_timeout);
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, *body_parser, kTuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    piece.resize(kPiece - body.size);
    if (ec == bhttp::error::body_limit) {
      co_return Status::TooLarge("request body exceeds this route's limit");
    }
    if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_chunk).category() &&
        ec != bhttp::error::partial_message) {
      co_return Status::InvalidArgument("malformed request body: " + ec.message());
    }
    if (ec) {
      gone = true;
      co_return Status::Unavailable("the client went away or stalled while sending the body");
    }
    co_return !piece.empty() || !body_parser->is_done();
  }

  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  asio::awaitable<bool> Send(const std::string& data) {
    stream.expires_after(server.opts.write_timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(data), kTuple);
    if (ec) gone = true;
    co_return !ec;
  }

  asio::awaitable<bool> Begin(Response head, std::optional<std::uint64_t> len,
                              bool defer) override {
    if (began_) throw std::logic_error("Exchange::Begin after the response began");
    began_ = true;
    bool no_body = head.status == 204 || head.status == 304 || head.status < 200;
    framing = no_body         ? BodyFraming::kNone
              : len           ? BodyFraming::kLength
              : version == 10 ? BodyFraming::kClose
                              : BodyFraming::kChunked;
    length = len.value_or(0);
    if (framing == BodyFraming::kClose || server.stopping) keep_alive = false;
    server.pipeline.Finish(req, route, head, Seconds());
    SerializeHead(head, version, keep_alive, framing, length, out);
    if (defer) {
      head_pending = true;
      co_return !gone;
    }
    co_return co_await Send(out);
  }

  // Sends the head Begin held back, when it did.
  asio::awaitable<bool> FlushHead() {
    if (!head_pending) co_return !gone;
    head_pending = false;
    co_return co_await Send(out);
  }

  asio::awaitable<bool> Write(std::string_view data) override {
    if (!began_ || ended) throw std::logic_error("Exchange::Write outside a begun response");
    if (gone) co_return false;
    if (data.empty() || req.method == Method::kHead || framing == BodyFraming::kNone) {
      co_return co_await FlushHead();
    }
    written += data.size();
    if (framing == BodyFraming::kLength && written > length) {
      throw std::logic_error("Exchange::Write past the promised Content-Length");
    }
    stream.expires_after(server.opts.write_timeout);
    beast::error_code ec;
    // A held head goes out in the same write.
    asio::const_buffer head = head_pending ? asio::buffer(out) : asio::const_buffer();
    head_pending = false;
    if (framing == BodyFraming::kChunked) {
      char size[20];
      auto r = std::to_chars(size, size + sizeof size - 2, data.size(), 16);
      *r.ptr++ = '\r';
      *r.ptr++ = '\n';
      std::array<asio::const_buffer, 4> parts{
          head, asio::buffer(size, static_cast<std::size_t>(r.ptr - size)),
          asio::buffer(data.data(), data.size()), asio::buffer("\r\n", 2)};
      auto [wec, n] = co_await asio::async_write(stream, parts, kTuple);
      ec = wec;
    } else {
      std::array<asio::const_buffer, 2> parts{head, asio::buffer(data.data(), data.size())};
      auto [wec, n] = co_await asio::async_write(stream, parts, kTuple);
      ec = wec;
    }
    if (ec) gone = true;
    co_return !ec;
  }

  asio::awaitable<bool> End() override {
    if (!began_ || ended) co_return !gone;
    ended = true;
    if (gone) co_return false;
    if (framing == BodyFraming::kLength && written != length && req.method != Method::kHead) {
      keep_alive = false;  // the client cannot tell where this answer ends: close
      co_return false;
    }
    if (framing == BodyFraming::kChunked && req.method != Method::kHead) {
      if (head_pending) out += "0\r\n\r\n";  // the whole answer in one write
      static const std::string kLast = "0\r\n\r\n";
      co_return head_pending ? co_await FlushHead() : co_await Send(kLast);
    }
    co_return co_await FlushHead();
  }

  asio::awaitable<bool> Reply(Response r) override {
    if (began_) throw std::logic_error("Exchange::Reply after the response began");
    began_ = ended = true;
    if (!body_done()) keep_alive = false;  // the unread rest of the body ends the connection
    if (server.stopping) keep_alive = false;
    server.pipeline.Finish(req, route, r, Seconds());
    SerializeResponse(r, version, keep_alive, req.method == Method::kHead, out);
    co_return co_await Send(out);
  }

  asio::awaitable<bool> RunBlocking(std::function<void()> fn) override {
    co_return co_await RunOnPool(server.opts.store_pool, stream.get_executor(), std::move(fn));
  }

  asio::awaitable<Result<Upgraded>> Upgrade(Response head) override {
    if (began_) throw std::logic_error("Exchange::Upgrade after the response began");
    if (watched) throw std::logic_error("Exchange::Upgrade needs a route with a streamed body");
    if (head.status != 101) throw std::logic_error("Exchange::Upgrade needs status 101");
    began_ = ended = true;
    server.pipeline.Finish(req, route, head, Seconds());
    SerializeHead(head, version, true, BodyFraming::kNone, 0, out);
    if (!co_await Send(out)) co_return Status::Unavailable("the client went away");
    upgraded = true;
    auto data = buffer.data();
    std::string pending(static_cast<const char*>(data.data()), data.size());
    buffer.consume(buffer.size());
    co_return Upgraded{stream.release_socket(), std::move(pending)};
  }
};

asio::awaitable<Server::Impl::Outcome> Server::Impl::RunStream(
    beast::tcp_stream& stream, beast::flat_buffer& buffer,
    bhttp::request_parser<bhttp::string_body>& parser, Request& req, Match match,
    const StreamRoute& route, unsigned version, bool keep_alive, bool expect_continue,
    std::chrono::steady_clock::time_point start, std::string& out) {
  int route_index = match.route;
  StreamExchange ex(*this, stream, buffer, parser, req, route_index, version, keep_alive,
                    expect_continue, route.options.body, start, out);
  std::optional<Response> refusal;
  bool admitted = true;
  const Route* matched = pipeline.RouteOf(match);
  if (matched && matched->may_block) {
    // A named std::function, not a lambda temporary, lives across the suspension.
    std::function<void()> admit = [&] { refusal = pipeline.Admit(req, match); };
    admitted = co_await RunOnPool(opts.store_pool, stream.get_executor(), std::move(admit));
  } else {
    refusal = pipeline.Admit(req, match);
  }
  if (!admitted) refusal = Busy();
  if (refusal) {
    co_await ex.Reply(std::move(*refusal));
    co_return ex.keep_alive && !ex.gone ? Outcome::kKeep : Outcome::kClose;
  }
  pipeline.metrics().AddInFlight(1);
  std::string failure;  // a handler's exception (answered outside the catch: no co_await there)
  try {
    if (!route.options.body) {
      // Nothing left to read: watch the socket, and cancel the handler when the client leaves.
      ex.watched = true;
      bool gone = false;
      using namespace asio::experimental::awaitable_operators;
      co_await (route.handler(ex) || WatchClient(stream, buffer, req, &gone));
      if (gone) ex.gone = true;
    } else {
      co_await route.handler(ex);
    }
  } catch (const boost::system::system_error& e) {
    if (e.code() != asio::error::operation_aborted) {
      LogError("streaming handler for {} {} failed: {} (request {})", MethodName(req.method),
               req.path, e.what(), req.request_id);
    }
    ex.gone = ex.gone || e.code() == asio::error::operation_aborted;
  } catch (const std::exception& e) {
    LogError("streaming handler for {} {} threw: {} (request {})", MethodName(req.method), req.path,
             e.what(), req.request_id);
    failure = e.what();
  }
  if (!failure.empty()) {
    if (!ex.began()) {
      co_await ex.Reply(Response::Problem(Status::Internal(failure)));
    } else {
      ex.keep_alive = false;  // the answer is cut short: the client must see it end
    }
  }
  pipeline.metrics().AddInFlight(-1);
  if (ex.upgraded) co_return Outcome::kUpgraded;
  if (!ex.gone && !ex.began()) {
    co_await ex.Reply(Response::Problem(Status::Internal("the handler gave no answer")));
  }
  if (!ex.gone && !ex.ended) {
    if (!co_await ex.End()) ex.keep_alive = false;
  }
  bool keep = ex.keep_alive && !ex.gone && ex.body_done() && !stopping;
  co_return keep ? Outcome::kKeep : Outcome::kClose;
}

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
        if ((conn->idle || conn->streaming) && conn->stream) conn->stream->cancel();
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
