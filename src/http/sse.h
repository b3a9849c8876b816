#pragma once
// Server-sent events (the WHATWG `text/event-stream` format) over a streaming exchange: one
// event per write, flushed; comment lines as heartbeats so proxies and clients see a live
// connection and a dead client is noticed.
#include <string>
#include <string_view>

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

}  // namespace drover::http
