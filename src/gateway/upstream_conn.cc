#include "gateway/upstream_conn.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <unordered_map>

namespace drover::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kIdlePerUpstream = 64;
// Kept-alive connections older than this are closed, not reused: most servers close theirs
// after 60 s or less, and a request sent as the server closes fails.
constexpr auto kMaxIdle = std::chrono::seconds(30);
// Connections idle for less than this are reused unchecked for requests that may be resent:
// servers close idle connections after seconds, not milliseconds.
constexpr auto kUncheckedIdle = std::chrono::seconds(1);

using Pool = std::unordered_map<std::string, std::deque<std::unique_ptr<UpstreamConn>>>;
Pool& ThreadPool() {
  thread_local Pool pool;
  return pool;
}

// Whether an idle connection is still usable: open, and nothing unasked for waiting on it (a
// close or stray bytes mean the server is done with it).
bool StillOpen(UpstreamConn& c) {
  if (c.buffer.size() > 0) return false;
  char b;
  auto fd = c.stream.socket().native_handle();
  ssize_t n = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<UpstreamConn> TakeIdle(const std::string& authority, bool check) {
  auto& pool = ThreadPool();
  auto it = pool.find(authority);
  if (it == pool.end()) return nullptr;
  auto now = std::chrono::steady_clock::now();
  auto& idle = it->second;
  while (!idle.empty()) {
    auto c = std::move(idle.back());  // the most recent: the least likely to be closed
    idle.pop_back();
    auto idle_for = now - c->idle_since;
    if (idle_for < kMaxIdle && c->buffer.size() == 0 &&
        ((!check && idle_for < kUncheckedIdle) || StillOpen(*c))) {
      c->reused = true;
      return c;
    }
  }
  return nullptr;
}

void PutIdle(std::unique_ptr<UpstreamConn> conn) {
  conn->idle_since = std::chrono::steady_clock::now();
  conn->stream.expires_never();
  auto& idle = ThreadPool()[conn->authority];
  if (idle.size() >= kIdlePerUpstream) idle.pop_front();
  idle.push_back(std::move(conn));
}

void DropIdle() { ThreadPool().clear(); }

void DropIdleTo(const std::string& authority) { ThreadPool().erase(authority); }

asio::awaitable<Result<std::unique_ptr<UpstreamConn>>> Connect(asio::any_io_executor ex,
                                                               const UpstreamUrl& url,
                                                               std::chrono::milliseconds timeout) {
  auto conn = std::make_unique<UpstreamConn>(ex);
  conn->authority = url.authority();
  boost::system::error_code ec;
  auto address = asio::ip::make_address(url.host, ec);
  std::vector<tcp::endpoint> endpoints;
  if (!ec) {
    endpoints.emplace_back(address, url.port);
  } else {
    tcp::resolver resolver(ex);
    auto [rec, results] =
        co_await resolver.async_resolve(url.host, std::to_string(url.port), kTuple);
    if (rec) {
      co_return Status::Unavailable("cannot resolve " + url.host + ": " + rec.message());
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  conn->stream.expires_after(timeout);
  auto [cec, ep] = co_await conn->stream.async_connect(endpoints, kTuple);
  if (cec) {
    co_return Status::Unavailable(
        "cannot connect to " + conn->authority + ": " +
        (cec == boost::beast::error::timeout ? std::string("timed out") : cec.message()));
  }
  conn->stream.socket().set_option(tcp::no_delay(true), ec);
  co_return std::move(conn);
}

}  // namespace drover::gateway
