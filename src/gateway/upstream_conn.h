#pragma once
// Connections to upstreams (internal to the gateway): opened with a timeout, kept alive in a
// pool per I/O thread (a connection belongs to the io_context it was opened on, and the
// proxy's handlers run on their client connection's thread), checked before reuse.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "gateway/route_spec.h"

namespace drover::gateway {

struct UpstreamConn {
  explicit UpstreamConn(const boost::asio::any_io_executor& ex) : stream(ex) {}
  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;  // bytes read past the last response
  std::string authority;             // host:port
  bool reused = false;
  std::chrono::steady_clock::time_point idle_since;
};

// An idle connection to `authority` opened on this thread; null when none. With `check`, or
// when it has been idle a while, it is first checked for a close (a system call): a request
// that cannot be sent twice wants that, one that can is resent on a new connection when a
// just-used one turns out closed (see DropIdleTo).
std::unique_ptr<UpstreamConn> TakeIdle(const std::string& authority, bool check);
// Keeps `conn` for the next request to its upstream (bounded per upstream; the oldest go).
void PutIdle(std::unique_ptr<UpstreamConn> conn);
// Closes this thread's idle connections (before its io_context stops).
void DropIdle();
// Closes this thread's idle connections to `authority` (one was found closed: the upstream
// restarted or timed them out, so the rest are likely closed too).
void DropIdleTo(const std::string& authority);

// Opens a connection to `url` within `timeout`: Unavailable with the reason when it cannot.
boost::asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> Connect(
    boost::asio::any_io_executor ex, const UpstreamUrl& url, std::chrono::milliseconds timeout);

}  // namespace drover::gateway
