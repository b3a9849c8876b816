#pragma once
// Streaming exchanges: a route whose handler takes over after the request head, for what does
// not fit one request and one response — server-sent events, long downloads and uploads, the
// gateway's proxied bodies and WebSocket pass-through. The handler is a coroutine on the
// connection's I/O thread; it reads the body piece by piece (bounded buffer: the socket is only
// read when the handler asks, which is the backpressure), writes the response as it goes
// (chunked, or with a known length), or takes the raw socket after a 101.
//
// Cancellation: while the handler runs without reading the body (a GET, or after the body), the
// transport watches the socket; when the client goes away the handler's pending operation (a
// timer, a write, a wait on the change feed) is cancelled — it throws operation_aborted, or
// returns false from Write — and the handler unwinds. Only routes that stream include this
// header: it brings Asio.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.h"
#include "http/router.h"

namespace drover::http {

// The socket of an upgraded connection and what the client sent after its request head.
struct Upgraded {
  boost::asio::ip::tcp::socket socket;
  std::string pending;
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  // The request: head, parameters, caller; and the whole body unless the route streams it.
  virtual Request& request() = 0;
  virtual boost::asio::any_io_executor executor() = 0;

  // The next piece of a streamed body (routes with StreamOptions::body) into `out` (replaced; at
  // most 64 KiB): true while there is more, false at the end. Errors: TooLarge past the
  // route's body limit, InvalidArgument for a malformed chunk, Unavailable when the client went
  // away or stalled past the read timeout.
  virtual boost::asio::awaitable<Result<bool>> ReadBody(std::string& out) = 0;

  // Starts the response with the status and headers of `head` (its body is ignored). With
  // `length` exactly that many bytes follow; without, the body is chunked (for an HTTP/1.0
  // client: delimited by closing the connection). False when the client is gone.
  // With `defer` the head is held and goes out with the first Write or End (one packet for a
  // small answer: a proxy relaying a body it already has); without, it is sent at once (a
  // stream whose first event may be long in coming).
  virtual boost::asio::awaitable<bool> Begin(Response head,
                                             std::optional<uint64_t> length = std::nullopt,
                                             bool defer = false) = 0;
  // Writes and flushes `data` (a chunk). False when the client is gone: stop writing.
  virtual boost::asio::awaitable<bool> Write(std::string_view data) = 0;
  // Ends the body. A handler that returns without it ends it anyway.
  virtual boost::asio::awaitable<bool> End() = 0;
  // Answers with one whole response instead (an error before streaming started).
  virtual boost::asio::awaitable<bool> Reply(Response r) = 0;
  // Sends `head` (status 101 and its Upgrade headers) and hands over the socket; the server
  // forgets the connection. Unavailable if the client is gone.
  virtual boost::asio::awaitable<Result<Upgraded>> Upgrade(Response head) = 0;

  // Whether the response has started (Begin, Reply or Upgrade).
  virtual bool began() const = 0;

  // Runs `fn` where it may block (a store read: the server's store pool, or here when it has
  // none) and resumes on this exchange's thread. False, without running it, when the pool is
  // full or `fn` waited past its queue timeout: answer 503.
  virtual boost::asio::awaitable<bool> RunBlocking(std::function<void()> fn) = 0;
};

struct StreamOptions {
  // The handler reads the body with ReadBody; otherwise the transport reads it whole into
  // request().body first, under the server's body limit.
  bool body = false;
  // Limit of a streamed body, in bytes; 0 = none.
  uint64_t body_limit = 0;
};

using StreamHandler = std::function<boost::asio::awaitable<void>(Exchange&)>;

struct StreamRoute {
  StreamHandler handler;
  StreamOptions options;
};

inline void AddStreamRoute(Router& router, Method method, std::string pattern, Access access,
                           StreamHandler handler, StreamOptions options = {}) {
  router.AddStream(method, std::move(pattern), access,
                   std::make_shared<StreamRoute>(StreamRoute{std::move(handler), options}));
}

}  // namespace drover::http
