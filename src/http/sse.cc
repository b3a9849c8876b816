#include "http/sse.h"

namespace drover::http {

std::string FormatSseEvent(std::string_view id, std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(data.size() + id.size() + event.size() + 32);
  // Field values must be single lines: CR and LF in an id or event name would start a new field.
  auto field = [&](std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    for (char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
    out += '\n';
  };
  if (!id.empty()) field("id", id);
  if (!event.empty()) field("event", event);
  size_t pos = 0;
  for (;;) {
    size_t end = data.find_first_of("\r\n", pos);
    out += "data: ";
    out += data.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    out += '\n';
    if (end == std::string_view::npos) break;
    pos = end + (data[end] == '\r' && end + 1 < data.size() && data[end + 1] == '\n' ? 2 : 1);
  }
  out += '\n';
  return out;
}

bool WantsEventStream(const Request& req) {
  return req.Header("Accept").find("text/event-stream") != std::string_view::npos;
}

std::string FormatSseComment(std::string_view text) {
  std::string out = ": ";
  for (char c : text) out += (c == '\r' || c == '\n') ? ' ' : c;
  out += "\n\n";
  return out;
}

boost::asio::awaitable<bool> BeginSse(Exchange& ex, int retry_ms) {
  Response head;
  head.content_type = "text/event-stream; charset=utf-8";
  head.AddHeader("Cache-Control", "no-cache");
  head.AddHeader("X-Accel-Buffering", "no");
  if (!co_await ex.Begin(std::move(head))) co_return false;
  co_return co_await ex.Write("retry: " + std::to_string(retry_ms) + "\n\n");
}

boost::asio::awaitable<void> FollowSse(
    Exchange& ex, std::chrono::milliseconds heartbeat, std::function<Result<FollowPage>()> read,
    std::function<boost::asio::awaitable<void>(std::chrono::milliseconds)> wait,
    std::function<bool()> stopped) {
  auto last_write = std::chrono::steady_clock::now();
  for (;;) {
    Result<FollowPage> page = Status::Unavailable("the server is busy");
    std::function<void()> run = [&] { page = read(); };
    co_await ex.RunBlocking(std::move(run));
    if (!page.ok()) {
      // The store is away: say so, and let the client reconnect (it resumes where it was).
      co_await ex.Write(FormatSseEvent("", "error", "{\"error\":\"store unavailable\"}"));
      co_return;
    }
    if (!page->events.empty()) {
      if (!co_await ex.Write(page->events)) co_return;
      last_write = std::chrono::steady_clock::now();
    }
    if (page->full) continue;  // more to catch up on
    if (stopped()) co_return;
    auto idle = std::chrono::steady_clock::now() - last_write;
    if (idle >= heartbeat) {
      if (!co_await ex.Write(FormatSseComment("heartbeat"))) co_return;
      last_write = std::chrono::steady_clock::now();
      idle = {};
    }
    co_await wait(std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat - idle));
  }
}

}  // namespace drover::http
