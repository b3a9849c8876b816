#pragma once
// Server-sent events (the WHATWG `text/event-stream` format) over a streaming exchange: one
// event per write, flushed; comment lines as heartbeats so proxies and clients see a live
// connection and a dead client is noticed.
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http/stream.h"

namespace drover::http {

// One event: `id:` and `event:` lines when given, `data:` per line of `data` (CR, LF and CRLF
// all split lines, as the format reads them), then a blank line.
std::string FormatSseEvent(std::string_view id, std::string_view event, std::string_view data);

// Whether the client asks for an event stream (Accept: text/event-stream).
bool WantsEventStream(const Request& req);

// ": <text>\n\n", a comment clients ignore.
std::string FormatSseComment(std::string_view text);

// Starts an event stream: 200, text/event-stream, no caching, no proxy buffering, plus `retry:`
// (how long a browser waits before reconnecting). False when the client is gone.
boost::asio::awaitable<bool> BeginSse(Exchange& ex, int retry_ms = 2000);

// One read of a followed feed: its events, formatted, and whether the page came full (more are
// waiting: read again at once).
struct FollowPage {
  std::string events;
  bool full = false;
};

// The loop of a stream that follows a store-backed feed (the change feed, log lines), after
// BeginSse: `read` (on a store thread) pages through what is there, then the stream writes a
// heartbeat comment when idle for `heartbeat` and waits with `wait(timeout)` for the next change
// — until the client goes away, `stopped()` (the server stops), or a read fails (an `error`
// event; the client reconnects and resumes by Last-Event-ID).
boost::asio::awaitable<void> FollowSse(
    Exchange& ex, std::chrono::milliseconds heartbeat, std::function<Result<FollowPage>()> read,
    std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> wait,
    std::function<bool()> stopped);

}  // namespace drover::http
