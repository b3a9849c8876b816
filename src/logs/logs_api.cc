#include "logs/logs_api.h"

// GCC 12 reports Asio's coroutine frames (allocated by its recycling allocator, freed by the
// matching operator delete) as mismatched here once the frames are inlined: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/clock.h"
#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"
#include "common/text.h"
#include "http/change_wait.h"
#include "http/handler_util.h"
#include "http/sse.h"
#include "http/stream.h"

namespace drover::logs {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using http::Access;
using http::Method;
using http::Request;
using http::Response;

constexpr size_t kMaxLinesPerPost = 5000;
constexpr size_t kMaxLineBytes = 16384;
constexpr size_t kMaxStream = 64;
constexpr int kMaxLimit = 5000;
constexpr int kStreamPage = 1000;

bool IsTraceId(std::string_view s) {
  if (s.size() != 32 || s == std::string(32, '0')) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsStreamName(std::string_view s) {
  if (s.empty() || s.size() > kMaxStream) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The body of POST /v1/instances/{id}/logs: {lines: [{at, stream, line, trace_id}], dropped}.
Result<std::pair<std::vector<LogLine>, int64_t>> ReadLines(const Request& req) {
  auto body = http::ReadJsonBody(req);
  if (!body.ok()) return body.status();
  JsonDecoder d(*body);
  std::vector<LogLine> lines;
  int64_t dropped = d.Int("dropped", false).value_or(0);
  if (dropped < 0) d.AddError("dropped", "must be 0 or more");
  const json::value* raw = d.Raw("lines", true);
  std::vector<FieldError> errors;
  const json::array* arr = raw ? raw->if_array() : nullptr;
  if (raw && !arr) d.AddError("lines", "must be an array of {at, stream, line, trace_id}");
  if (arr && arr->size() > kMaxLinesPerPost) {
    d.AddError("lines", fmt::format("at most {} lines per request", kMaxLinesPerPost));
    arr = nullptr;
  }
  if (Status s = d.Finish(); !s.ok()) AppendErrors(errors, s);
  if (arr) {
    lines.reserve(arr->size());
    for (size_t i = 0; i < arr->size() && errors.size() < 10; ++i) {
      std::string at = fmt::format("lines[{}]", i);
      if (!(*arr)[i].is_object()) {
        errors.push_back({at, "must be an object {at, stream, line, trace_id}"});
        continue;
      }
      JsonDecoder ld((*arr)[i].as_object(), at + ".");
      LogLine l;
      auto when = ld.String("at", true);
      if (when) {
        if (auto t = ParseRfc3339(*when)) {
          l.at_ms = ToUnixMillis(*t);
        } else {
          ld.AddError("at", "must be an RFC 3339 time like 2026-12-01T13:00:00.123Z");
        }
      }
      l.stream = ld.String("stream", true).value_or("");
      if (!l.stream.empty() && !IsStreamName(l.stream)) {
        ld.AddError("stream",
                    fmt::format("must be 1 to {} letters, digits, '.', '_' or '-'", kMaxStream));
      }
      l.line = ld.String("line", true).value_or("");
      if (l.line.size() > kMaxLineBytes) {
        ld.AddError("line", fmt::format("at most {} bytes (split longer lines)", kMaxLineBytes));
      }
      l.trace_id = ld.String("trace_id", false).value_or("");
      if (!l.trace_id.empty() && !IsTraceId(l.trace_id)) {
        ld.AddError("trace_id", "must be 32 lowercase hex digits, not all zero (W3C trace-id)");
      }
      if (Status s = ld.Finish(); !s.ok()) {
        AppendErrors(errors, s);
        continue;
      }
      lines.push_back(std::move(l));
    }
  }
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return std::make_pair(std::move(lines), dropped);
}

// ?since= / ?until=: an RFC 3339 time, or a duration back from now ("10m").
Result<int64_t> ReadTime(const Request& req, std::string_view name) {
  auto v = req.Query(name);
  if (!v || v->empty()) return int64_t{0};
  if (auto t = ParseRfc3339(*v)) return ToUnixMillis(*t);
  if (auto d = ParseDuration(*v); d && d->count() > 0) {
    return ToUnixMillis(SystemClock::Get().Now()) - d->count();
  }
  return Status::InvalidArgument(fmt::format(
      "query parameter '{}' must be an RFC 3339 time like 2026-12-01T13:00:00Z or a duration "
      "back from now like 10m",
      name));
}

struct Params {
  LogQuery query;
  bool follow = false;
  std::chrono::milliseconds heartbeat{15000};
  std::chrono::milliseconds wait{0};  // JSON: how long to wait for a first line
};

Result<Params> ReadParams(const Request& req, env::Services& envs) {
  Params p;
  auto tenant = http::RequestTenant(req);
  if (!tenant.ok()) return tenant.status();
  p.query.tenant = std::move(*tenant);
  if (auto e = req.Query("environment"); e && !e->empty()) {
    if (!IsValidName(*e)) {
      return Status::InvalidArgument(fmt::format("query parameter 'environment': {}", kNameRule));
    }
    auto env = envs.environments.Get(p.query.tenant, *e);
    if (!env.ok()) return env.status();
    p.query.environment = *e;
  }
  if (auto i = req.Query("instance"); i && !i->empty()) {
    if (i->size() > 128 || !TextProblem(*i).empty()) {
      return Status::InvalidArgument("query parameter 'instance' must be an instance id");
    }
    p.query.instance = *i;
  }
  if (auto t = req.Query("trace"); t && !t->empty()) {
    if (!IsTraceId(*t)) {
      return Status::InvalidArgument(
          "query parameter 'trace' must be a trace id: 32 lowercase hex digits");
    }
    p.query.trace_id = *t;
  }
  auto since = ReadTime(req, "since");
  if (!since.ok()) return since.status();
  auto until = ReadTime(req, "until");
  if (!until.ok()) return until.status();
  p.query.since_ms = *since;
  p.query.until_ms = *until;
  if (auto q = req.Query("q"); q && !q->empty()) {
    if (!TextProblem(*q).empty()) {
      return Status::InvalidArgument("query parameter 'q' must be UTF-8 text");
    }
    auto pattern = Pattern::Parse(*q);
    if (!pattern.ok()) return pattern.status();
    p.query.q = std::move(*pattern);
  }
  auto limit = http::ReadLimit(req, 100, kMaxLimit);
  if (!limit.ok()) return limit.status();
  p.query.limit = *limit;
  if (auto w = req.Query("wait"); w && !w->empty()) {
    auto d = ParseDuration(*w);
    if (!d || d->count() < 0 || *d > std::chrono::minutes(10)) {
      return Status::InvalidArgument(
          "query parameter 'wait' must be a duration from 0s to 10m, like 30s");
    }
    p.wait = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  auto after = req.Query("after");
  std::string_view last_id = req.Header("Last-Event-ID");
  auto follow = http::ReadBool(req, "follow");
  if (!follow.ok()) return follow.status();
  p.follow = *follow || http::WantsEventStream(req);
  if (p.follow && !last_id.empty()) after = std::string(last_id);
  if (after && !after->empty()) {
    auto pos = Position::Parse(*after);
    if (!pos) {
      return Status::InvalidArgument(
          "query parameter 'after' must be a line's id like 1234.5 (or Last-Event-ID)");
    }
    p.query.after = *pos;
  }
  return p;
}

std::string LineJson(const StoredLine& l) {
  std::string out = "{\"id\":\"" + l.pos.ToString() + "\"";
  AppendJsonField(out, "at", FormatRfc3339(FromUnixMillis(l.at_ms)));
  AppendJsonField(out, "environment", l.environment);
  AppendJsonField(out, "instance", l.instance);
  AppendJsonField(out, "stream", l.stream);
  AppendJsonField(out, "line", l.line);
  if (!l.trace_id.empty()) AppendJsonField(out, "trace_id", l.trace_id);
  out += '}';
  return out;
}

class Reader {
 public:
  Reader(LogStore& logs, env::Services& envs, http::Waiters& waiters)
      : logs_(logs), envs_(envs), waiters_(waiters) {}

  asio::awaitable<void> Serve(http::Exchange& ex) {
    Result<Params> params = Status::Unavailable("not read");
    std::function<void()> read = [&] { params = ReadParams(ex.request(), envs_); };
    if (!co_await ex.RunBlocking(std::move(read))) {
      co_await ex.Reply(http::Busy());
      co_return;
    }
    if (!params.ok()) {
      co_await ex.Reply(Response::Problem(params.status()));
      co_return;
    }
    if (params->follow) {
      co_await Follow(ex, std::move(*params));
      co_return;
    }
    LogQuery& q = params->query;
    Result<LogPage> page = Status::Unavailable("not read");
    // With ?wait= an empty answer waits for lines (a long poll: how `drover logs -f` follows).
    auto deadline = std::chrono::steady_clock::now() + params->wait;
    for (;;) {
      int64_t mark = waiters_.Mark(kTopic);
      std::function<void()> get = [&] { page = logs_.Read(q); };
      if (!co_await ex.RunBlocking(std::move(get))) {
        co_await ex.Reply(http::Busy());
        co_return;
      }
      if (!page.ok()) {
        co_await ex.Reply(Response::Problem(page.status()));
        co_return;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!page->lines.empty() || left.count() <= 0 || waiters_.stopped()) break;
      if (page->next) q.after = *page->next;
      co_await http::WaitAfterMark(waiters_, std::string(kTopic), mark, left);
    }
    std::string out = "{\"items\":[";
    for (size_t i = 0; i < page->lines.size(); ++i) {
      if (i) out += ',';
      out += LineJson(page->lines[i]);
    }
    out += "],\"next\":";
    if (page->next) {
      out += "\"" + page->next->ToString() + "\"";
    } else {
      out += "null";
    }
    out += '}';
    co_await ex.Reply(Response::Json(200, std::move(out)));
  }

 private:
  // The lines asked for (the last `limit`, or from since/after), then each new one as it is
  // committed, until the client goes away.
  asio::awaitable<void> Follow(http::Exchange& ex, Params p) {
    if (!co_await http::BeginSse(ex)) co_return;
    int64_t mark = 0;
    auto read = [&]() -> Result<http::FollowPage> {
      mark = waiters_.Mark(kTopic);
      auto page = logs_.Read(p.query);
      if (!page.ok()) return page.status();
      http::FollowPage out;
      for (const auto& l : page->lines) {
        out.events += http::FormatSseEvent(l.pos.ToString(), "", LineJson(l));
      }
      out.full = static_cast<int>(page->lines.size()) == p.query.limit;
      if (page->next) p.query.after = *page->next;
      p.query.limit = kStreamPage;
      return out;
    };
    auto wait = [&](std::chrono::milliseconds timeout) {
      return http::WaitAfterMark(waiters_, std::string(kTopic), mark, timeout);
    };
    co_await http::FollowSse(ex, p.heartbeat, read, wait, [&] { return waiters_.stopped(); });
  }

  LogStore& logs_;
  env::Services& envs_;
  http::Waiters& waiters_;
};

}  // namespace

void AddLogRoutes(http::Router& router, LogStore& logs, env::Services& envs,
                  http::Waiters& waiters) {
  router.Add(Method::kPost, "/v1/instances/{id}/logs", Access::kAgent,
             [&logs, &envs](Request& req, http::Responder respond) {
               auto inst = envs.instances.InstanceFor(*req.principal, req.Param("id"));
               if (!inst.ok()) return http::SendError(respond, inst.status());
               auto lines = ReadLines(req);
               if (!lines.ok()) return http::SendError(respond, lines.status());
               size_t sent = lines->first.size();
               // Answered once the lines are committed: a 202 is never lost to a crash.
               auto committed = [respond, sent](Status s) {
                 if (!s.ok()) return http::SendError(respond, s);
                 respond(http::JsonResponse(202, json::object{{"accepted", sent}}));
               };
               if (!logs.Append(inst->tenant, inst->environment, inst->id, std::move(lines->first),
                                committed)) {
                 // The buffer is full: nothing taken; the agent sends the batch again shortly.
                 return http::SendError(
                     respond, Status::ResourceExhausted(
                                  "the server's log buffer is full; send these lines again later"));
               }
               // Counted once the batch is taken (a batch sent again is not counted twice).
               logs.CountDropped("agent", static_cast<uint64_t>(lines->second));
             });
  auto reader = std::make_shared<Reader>(logs, envs, waiters);
  http::AddStreamRoute(router, Method::kGet, "/v1/logs", Access::kAny,
                       [reader](http::Exchange& ex) { return reader->Serve(ex); });
}

}  // namespace drover::logs
