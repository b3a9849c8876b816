#include "events/events_api.h"

// GCC 12 reports Asio's coroutine frames (allocated by its recycling allocator, freed by the
// matching operator delete) as mismatched here once the frames are inlined: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>

#include <boost/asio/steady_timer.hpp>
#include <charconv>

#include "common/clock.h"
#include "common/duration.h"
#include "common/names.h"
#include "http/change_wait.h"
#include "http/handler_util.h"
#include "http/sse.h"
#include "http/stream.h"

namespace drover::events {
namespace {

namespace asio = boost::asio;
using http::Access;
using http::Method;
using http::Request;
using http::Response;

constexpr size_t kMaxKinds = 32;
constexpr int kStreamPage = 500;  // records read per query while a stream catches up

Result<int64_t> ReadSequence(std::string_view v, std::string_view what) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0) {
    return Status::InvalidArgument(
        fmt::format("{} must be a non-negative integer (an event's seq)", what));
  }
  return n;
}

Result<std::chrono::milliseconds> ReadDuration(const Request& req, std::string_view name,
                                               std::chrono::milliseconds def,
                                               std::chrono::milliseconds min,
                                               std::chrono::milliseconds max) {
  auto v = req.Query(name);
  if (!v) return def;
  auto d = ParseDuration(*v);
  if (!d || *d < min || *d > max) {
    return Status::InvalidArgument(
        fmt::format("query parameter '{}' must be a duration from {} to {}, like 30s", name,
                    FormatDuration(min), FormatDuration(max)));
  }
  return *d;
}

// The tenants a feed or audit read covers: the caller's own; an admin's every tenant, or the
// one named by ?tenant=.
Result<std::optional<std::string>> ReadScope(const Request& req) {
  auto t = req.Query("tenant");
  if (req.caller().role == http::Role::kAdmin && (!t || t->empty())) {
    return std::optional<std::string>{};
  }
  auto tenant = http::RequestTenant(req);
  if (!tenant.ok()) return tenant.status();
  return std::optional<std::string>(std::move(*tenant));
}

Result<std::vector<std::string>> ReadKinds(const Request& req, std::string_view name) {
  std::vector<std::string> kinds;
  auto v = req.Query(name);
  if (!v || v->empty()) return kinds;
  std::string_view rest = *v;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view k = rest.substr(0, comma);
    if (!IsValidName(k)) {
      return Status::InvalidArgument(
          fmt::format("query parameter '{}' must be a comma-separated list of kinds (environment, "
                      "instance, variable, ...); '{}' is not one",
                      name, k.substr(0, 64)));
    }
    kinds.emplace_back(k);
    if (kinds.size() > kMaxKinds) {
      return Status::InvalidArgument(
          fmt::format("query parameter '{}' names more than {} kinds", name, kMaxKinds));
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return kinds;
}

struct FeedParams {
  FeedQuery query;
  bool sse = false;
  std::chrono::milliseconds wait{0};       // JSON: how long to wait for a first event
  std::chrono::milliseconds heartbeat{0};  // SSE: comment lines this often when idle
};

Result<FeedParams> ReadFeedParams(const Request& req, int64_t now_index) {
  FeedParams p;
  p.sse = http::WantsEventStream(req);
  auto scope = ReadScope(req);
  if (!scope.ok()) return scope.status();
  p.query.tenant = std::move(*scope);
  auto kinds = ReadKinds(req, "kinds");
  if (!kinds.ok()) return kinds.status();
  p.query.kinds = std::move(*kinds);
  auto limit = http::ReadLimit(req, 100, 1000);
  if (!limit.ok()) return limit.status();
  p.query.limit = *limit;
  // Where to start: an event stream resumes after Last-Event-ID (what a browser's EventSource
  // sends when it reconnects), else after ?after=, else from now on; a JSON page after ?after=
  // or from the oldest record kept.
  p.query.after = p.sse ? now_index : 0;
  if (auto a = req.Query("after")) {
    auto n = ReadSequence(*a, "query parameter 'after'");
    if (!n.ok()) return n.status();
    p.query.after = *n;
  }
  if (std::string_view id = req.Header("Last-Event-ID"); p.sse && !id.empty()) {
    auto n = ReadSequence(id, "header Last-Event-ID");
    if (!n.ok()) return n.status();
    p.query.after = *n;
  }
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  using std::chrono::seconds;
  auto wait = ReadDuration(req, "wait", milliseconds(0), milliseconds(0), minutes(10));
  if (!wait.ok()) return wait.status();
  p.wait = *wait;
  auto hb = ReadDuration(req, "heartbeat", seconds(15), seconds(1), minutes(5));
  if (!hb.ok()) return hb.status();
  p.heartbeat = *hb;
  return p;
}

class Feed {
 public:
  Feed(ChangeLog& log, store::Store& store, http::Waiters& waiters)
      : log_(log), store_(store), waiters_(waiters) {}

  asio::awaitable<void> Serve(http::Exchange& ex) {
    Request& req = ex.request();
    auto params = ReadFeedParams(req, store_.LastIndex());
    if (!params.ok()) {
      co_await ex.Reply(Response::Problem(params.status()));
      co_return;
    }
    if (params->sse) {
      co_await Stream(ex, std::move(*params));
    } else {
      co_await Page(ex, std::move(*params));
    }
  }

 private:
  // One long-poll page: the records after `after` (waiting up to `wait` for a first one), and
  // `last`, the sequence to ask after next time.
  asio::awaitable<void> Page(http::Exchange& ex, FeedParams p) {
    std::optional<int64_t> reset;
    std::function<void()> pruned = [&] { reset = Pruned(p.query.after); };
    if (!co_await ex.RunBlocking(std::move(pruned))) {
      co_await ex.Reply(http::Busy());
      co_return;
    }
    if (reset) p.query.after = *reset;
    auto deadline = std::chrono::steady_clock::now() + p.wait;
    for (;;) {
      p.query.upto = store_.LastIndex();
      Result<std::vector<Entry>> entries = Status::Unavailable("not read");
      std::function<void()> read = [&] { entries = log_.Feed(p.query); };
      if (!co_await ex.RunBlocking(std::move(read))) {
        co_await ex.Reply(http::Busy());
        co_return;
      }
      if (!entries.ok()) {
        co_await ex.Reply(Response::Problem(entries.status()));
        co_return;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!entries->empty() || left.count() <= 0 || waiters_.stopped()) {
        // A full page stops at its last record; a partial one covers everything up to `upto`
        // (the rest were other tenants' or kinds').
        int64_t last = static_cast<int>(entries->size()) == p.query.limit
                           ? entries->back().seq
                           : std::max(p.query.upto, p.query.after);
        std::string out = "{\"events\":[";
        for (size_t i = 0; i < entries->size(); ++i) {
          if (i) out += ',';
          out += EntryJson((*entries)[i]);
        }
        out += fmt::format("],\"last\":{}", last);
        if (reset) out += fmt::format(",\"reset\":true,\"pruned_through\":{}", *reset);
        out += '}';
        Response r = Response::Json(200, std::move(out));
        r.AddHeader("X-Drover-Index", std::to_string(p.query.upto));
        co_await ex.Reply(std::move(r));
        co_return;
      }
      p.query.after = std::max(p.query.after, p.query.upto);  // never back before the asked
      co_await http::WaitForChange(waiters_, kTopic, p.query.upto, left);
    }
  }

  // The event stream: every record as an event (id: its seq), comment heartbeats when idle,
  // until the client goes away (the transport then cancels the wait) or the server stops.
  asio::awaitable<void> Stream(http::Exchange& ex, FeedParams p) {
    if (!co_await http::BeginSse(ex)) co_return;
    p.query.limit = kStreamPage;
    std::optional<int64_t> reset;
    std::function<void()> pruned = [&] { reset = Pruned(p.query.after); };
    if (!co_await ex.RunBlocking(std::move(pruned))) co_return;
    if (reset) {
      // Records this client has not seen were pruned: it should reload what it shows.
      std::string data = fmt::format("{{\"pruned_through\":{}}}", *reset);
      if (!co_await ex.Write(http::FormatSseEvent(std::to_string(*reset), "reset", data))) {
        co_return;
      }
      p.query.after = *reset;
    }
    auto read = [&]() -> Result<http::FollowPage> {
      p.query.upto = store_.LastIndex();
      auto entries = log_.Feed(p.query);
      if (!entries.ok()) return entries.status();
      http::FollowPage page;
      for (const auto& e : *entries) {
        page.events += http::FormatSseEvent(std::to_string(e.seq), "", EntryJson(e));
      }
      page.full = static_cast<int>(entries->size()) == p.query.limit;
      // A full page goes on after its last record; a partial one covered everything to `upto`.
      p.query.after = page.full ? entries->back().seq : std::max(p.query.after, p.query.upto);
      return page;
    };
    auto wait = [&](std::chrono::milliseconds timeout) {
      return http::WaitForChange(waiters_, kTopic, p.query.upto, timeout);
    };
    co_await http::FollowSse(ex, p.heartbeat, read, wait, [&] { return waiters_.stopped(); });
  }

  // Where a reader resuming after `after` must restart when records it has not seen were
  // pruned; nullopt when none were (or it starts from the beginning).
  std::optional<int64_t> Pruned(int64_t after) {
    if (after == 0) return std::nullopt;
    auto through = log_.PrunedThrough();
    if (!through.ok() || after >= *through) return std::nullopt;
    return *through;
  }

  ChangeLog& log_;
  store::Store& store_;
  http::Waiters& waiters_;
};

Result<std::optional<int64_t>> ReadTime(const Request& req, std::string_view name) {
  auto v = req.Query(name);
  if (!v || v->empty()) return std::optional<int64_t>{};
  if (auto t = ParseRfc3339(*v)) return std::optional<int64_t>(ToUnixMillis(*t));
  return Status::InvalidArgument(
      fmt::format("query parameter '{}' must be an RFC 3339 time like 2026-12-01T13:00:00Z", name));
}

void ServeAudit(ChangeLog& log, Request& req, const http::Responder& respond) {
  AuditQuery q;
  auto scope = ReadScope(req);
  if (!scope.ok()) return http::SendError(respond, scope.status());
  q.tenant = std::move(*scope);
  if (auto a = req.Query("actor")) {
    // A key id (or "anonymous" for calls without a valid key).
    if (a->size() > 128) {
      return http::SendError(respond,
                             Status::InvalidArgument("query parameter 'actor' must be a key id"));
    }
    q.actor = *a;
  }
  if (auto k = req.Query("kind"); k && !k->empty()) {
    if (!IsValidName(*k)) {
      return http::SendError(respond,
                             Status::InvalidArgument("query parameter 'kind' must be a kind like "
                                                     "environment, variable or key"));
    }
    q.kind = *k;
  }
  auto since = ReadTime(req, "since");
  if (!since.ok()) return http::SendError(respond, since.status());
  auto until = ReadTime(req, "until");
  if (!until.ok()) return http::SendError(respond, until.status());
  q.since_ms = *since;
  q.until_ms = *until;
  auto limit = http::ReadLimit(req, 100, 1000);
  if (!limit.ok()) return http::SendError(respond, limit.status());
  q.limit = *limit;
  if (auto c = req.Query("cursor"); c && !c->empty()) {
    auto n = ReadSequence(*c, "query parameter 'cursor'");
    if (!n.ok()) return http::SendError(respond, n.status());
    q.before = *n;
  }
  auto items = log.Audit(q);
  if (!items.ok()) return http::SendError(respond, items.status());
  std::string out = "{\"items\":[";
  for (size_t i = 0; i < items->size(); ++i) {
    if (i) out += ',';
    out += EntryJson((*items)[i]);
  }
  out += ']';
  bool more = static_cast<int>(items->size()) == q.limit;
  http::AppendNextCursor(out, more ? std::to_string(items->back().seq) : std::string());
  out += '}';
  respond(Response::Json(200, std::move(out)));
}

}  // namespace

void AddEventRoutes(http::Router& router, ChangeLog& log, store::Store& store,
                    http::Waiters& waiters) {
  auto feed = std::make_shared<Feed>(log, store, waiters);
  http::AddStreamRoute(router, Method::kGet, "/v1/events", Access::kAny,
                       [feed](http::Exchange& ex) { return feed->Serve(ex); });
  router.Add(Method::kGet, "/v1/audit", Access::kAny,
             [&log](Request& req, http::Responder respond) { ServeAudit(log, req, respond); });
}

}  // namespace drover::events
