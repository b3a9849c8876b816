#include "gateway/proxy.h"

// GCC 12 reports Asio's coroutine frames (allocated by its recycling allocator, freed by the
// matching operator delete) as mismatched once the frames are inlined: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <future>
#include <map>
#include <random>
#include <thread>

#include "common/duration.h"
#include "common/log.h"
#include "common/text.h"
#include "common/trace.h"
#include "gateway/field_arena.h"
#include "gateway/sessions.h"
#include "gateway/upstream_conn.h"
#include "http/handler_util.h"
#include "http/pipeline.h"
#include "http/rate_limiter.h"
#include "http/stream.h"

namespace drover::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::ip::tcp;
using http::Exchange;
using http::Method;
using http::Request;
using std::chrono::milliseconds;
using Steady = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

constexpr size_t kPiece = 64 * 1024;       // body bytes per read and write
constexpr size_t kReplayable = 64 * 1024;  // a request body up to this is kept for a retry
constexpr auto kEnvCacheFor = std::chrono::seconds(1);
constexpr auto kHealthEvery = std::chrono::seconds(2);
constexpr auto kProbeTimeout = std::chrono::seconds(2);

using AnswerFields = bhttp::basic_fields<ArenaAllocator<char>>;

// A parser for one upstream answer whose header fields live in its own arena.
struct ResponseParser : FieldArena,
                        bhttp::response_parser<bhttp::buffer_body, ArenaAllocator<char>> {
  ResponseParser()
      : bhttp::response_parser<bhttp::buffer_body, ArenaAllocator<char>>(
            std::piecewise_construct, std::make_tuple(),
            std::make_tuple(ArenaAllocator<char>(static_cast<FieldArena*>(this)))) {}
};

bool Idempotent(Method m) {
  return m == Method::kGet || m == Method::kHead || m == Method::kOptions || m == Method::kPut ||
         m == Method::kDelete;
}

// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the framing
// headers the proxy writes itself.
bool IsHopByHop(std::string_view name) {
  for (std::string_view h :
       {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "proxy-authorization", "proxy-authenticate", "content-length", "expect"}) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

// Whether `name` is listed in a Connection header value ("close, X-Foo").
bool ListedIn(std::string_view connection, std::string_view name) {
  while (!connection.empty()) {
    size_t comma = connection.find(',');
    std::string_view token = connection.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (EqualsIgnoreCase(token, name)) return true;
    if (comma == std::string_view::npos) break;
    connection.remove_prefix(comma + 1);
  }
  return false;
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

bool IsWebSocket(const Request& req) {
  return req.method == Method::kGet && ContainsIgnoreCase(req.Header("Upgrade"), "websocket") &&
         ContainsIgnoreCase(req.Header("Connection"), "upgrade");
}

// A Cookie header value without the cookie `name` ("" when nothing else is left).
std::string WithoutCookie(std::string_view header, std::string_view name) {
  std::string out;
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view pair = header.substr(0, semi);
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (!pair.empty() && (eq == std::string_view::npos || pair.substr(0, eq) != name)) {
      if (!out.empty()) out += "; ";
      out += pair;
    }
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return out;
}

// The query without the parameter `name` ("a=1&drover_code=x&b=2" -> "a=1&b=2").
std::string WithoutParameter(std::string_view query, std::string_view name) {
  std::string out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    if (!part.empty() && part.substr(0, part.find('=')) != name) {
      if (!out.empty()) out += '&';
      out += part;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

// The "for=" of a Forwarded element: IPv6 addresses quoted and bracketed (RFC 7239).
std::string ForwardedFor(const std::string& peer) {
  if (peer.find(':') != std::string::npos) return "\"[" + peer + "]\"";
  return peer.empty() ? "unknown" : peer;
}

// What one request through the gateway is going to.
struct Target {
  std::string tenant;
  std::string label;  // the route's name, or "env/NAME"
  const RouteSpec* spec = nullptr;
  std::shared_ptr<UpstreamSet> upstreams;
  std::string path;  // what follows the upstream's base: "/a/b?x=1"
  bool strip_authorization = false;
  std::string hash_key;
};

// Buffers for relaying bodies, kept per I/O thread: a 64 KiB allocation per request costs more
// (page faults, the allocator trimming) than the whole small answer.
class PieceBuffer {
 public:
  PieceBuffer() {
    auto& spare = Spare();
    if (spare.empty()) {
      data_ = std::make_unique_for_overwrite<char[]>(kPiece);
    } else {
      data_ = std::move(spare.back());
      spare.pop_back();
    }
  }
  ~PieceBuffer() {
    auto& spare = Spare();
    if (spare.size() < 64) spare.push_back(std::move(data_));
  }
  PieceBuffer(const PieceBuffer&) = delete;
  PieceBuffer& operator=(const PieceBuffer&) = delete;
  char* data() { return data_.get(); }
  static constexpr size_t size() { return kPiece; }

 private:
  static std::vector<std::unique_ptr<char[]>>& Spare() {
    thread_local std::vector<std::unique_ptr<char[]>> spare;
    return spare;
  }
  std::unique_ptr<char[]> data_;
};

// The request head sent upstream (everything but the body).
std::string RequestHead(const Request& req, const Target& t, const UpstreamUrl& up, bool websocket,
                        std::optional<uint64_t> length, bool chunked) {
  std::string h;
  h.reserve(512);
  h += http::MethodName(req.method);
  h += ' ';
  h += up.base;
  h += t.path.empty() ? "/" : t.path;
  h += " HTTP/1.1\r\nHost: ";
  h += up.authority();
  h += "\r\n";
  std::string_view connection = req.Header("Connection");
  std::string xff, forwarded;
  for (const auto& [name, value] : req.headers) {
    if (IsHopByHop(name) || ListedIn(connection, name)) continue;
    if (EqualsIgnoreCase(name, "host") || EqualsIgnoreCase(name, "x-request-id") ||
        EqualsIgnoreCase(name, "traceparent") || EqualsIgnoreCase(name, "x-forwarded-proto") ||
        EqualsIgnoreCase(name, "x-forwarded-host")) {
      continue;
    }
    if (EqualsIgnoreCase(name, "x-forwarded-for")) {
      xff = std::string(value);
      continue;
    }
    if (EqualsIgnoreCase(name, "forwarded")) {
      forwarded = std::string(value);
      continue;
    }
    if (EqualsIgnoreCase(name, "authorization")) {
      // The caller's drover key never goes upstream.
      if (t.strip_authorization || http::BearerToken(value).starts_with("drv_")) continue;
    }
    if (EqualsIgnoreCase(name, "cookie")) {
      // Nor does a drover session.
      std::string rest = WithoutCookie(value, kSessionCookie);
      if (rest.empty()) continue;
      h += "Cookie: " + rest + "\r\n";
      continue;
    }
    h += name;
    h += ": ";
    h += value;
    h += "\r\n";
  }
  std::string_view host = req.Header("Host");
  h += "X-Forwarded-For: ";
  h += xff.empty() ? req.peer : xff + ", " + req.peer;
  h += "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ";
  h += host;
  h += "\r\nForwarded: ";
  if (!forwarded.empty()) h += forwarded + ", ";
  h += "for=" + ForwardedFor(req.peer) + ";proto=http";
  if (!host.empty()) {
    h += ";host=\"";
    h += host;
    h += '"';
  }
  h += "\r\nX-Request-Id: ";
  h += req.request_id;
  h += "\r\ntraceparent: ";
  // The caller's as it is (drover records no spans of its own for a new parent id to name), or
  // the trace started for this request: the id the access log and the upstream share.
  h += req.Traceparent();
  h += "\r\n";
  if (websocket) {
    h += "Connection: Upgrade\r\nUpgrade: ";
    h += req.Header("Upgrade");
    h += "\r\n";
  }
  if (length) {
    h += "Content-Length: " + std::to_string(*length) + "\r\n";
  } else if (chunked) {
    h += "Transfer-Encoding: chunked\r\n";
  }
  h += "\r\n";
  return h;
}

// The response head for the client: the upstream's status and end-to-end headers.
http::Response ClientHead(const bhttp::response_header<AnswerFields>& up) {
  http::Response r;
  r.status = static_cast<int>(up.result_int());
  r.content_type = "";  // the upstream's Content-Type is among the headers
  std::string_view connection = up[bhttp::field::connection];
  bool upgrade = r.status == 101;
  for (const auto& f : up) {
    std::string_view name = f.name_string();
    if (upgrade && (EqualsIgnoreCase(name, "upgrade") || EqualsIgnoreCase(name, "connection"))) {
      r.AddHeader(name, f.value());
      continue;
    }
    if (IsHopByHop(name) || ListedIn(connection, name) || EqualsIgnoreCase(name, "x-request-id")) {
      continue;
    }
    r.AddHeader(name, f.value());
  }
  return r;
}

// 303 to the URL without its login code, setting the session cookie for /env/NAME/.
http::Response SessionRedirect(const Request& req, const std::string& env,
                               const std::string& token) {
  http::Response r;
  r.status = 303;
  r.content_type = "";
  std::string query = WithoutParameter(req.query, kCodeParameter);
  r.AddHeader("Location", std::string(req.path) + (query.empty() ? "" : "?" + query));
  r.AddHeader(
      "Set-Cookie",
      fmt::format("{}={}; Path=/env/{}/; HttpOnly; SameSite=Strict; Max-Age={}", kSessionCookie,
                  token, env, std::chrono::seconds(kSessionLifetime).count()));
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

http::Response Problem(int status, std::string detail) {
  return http::Response::Problem(status, "", detail);
}

http::Response Unauthorized(std::string detail) {
  auto r = Problem(401, std::move(detail));
  r.AddHeader("WWW-Authenticate", "Bearer");
  return r;
}

http::Response TooManyRequests(double retry_after) {
  auto r = Problem(429, "rate limit exceeded for this route");
  r.AddHeader("Retry-After", std::to_string(static_cast<int64_t>(std::ceil(retry_after))));
  return r;
}

// How one try ended.
struct Attempt {
  enum Kind { kResponse, kConnectFailed, kFailed, kTimedOut, kClientFailed } kind = kFailed;
  std::string why;
  std::unique_ptr<UpstreamConn> conn;
  std::unique_ptr<ResponseParser> parser;
  // A kept-alive connection that failed before any answer: it was closed while idle, and the
  // request may be resent on a new one.
  bool stale = false;
};

// The retry budget and metrics of one route (or one environment's proxy).
struct RouteStats {
  metrics::Counter* requests[6] = {};  // by status class: 1xx..5xx, [0] for client gone
  metrics::Counter* retries = nullptr;
  metrics::Counter* ejections = nullptr;
  metrics::Histogram* seconds = nullptr;
  std::mutex mu;
  double tokens = 3;  // retries the budget allows now
};

}  // namespace

struct EnvTarget {
  std::mutex mu;  // guards everything below
  env::Environment env;
  bool found = false;
  std::vector<UpstreamUrl> urls;  // running instances' service addresses
  Steady::time_point loaded_at{};
  Steady::time_point touched_at{};
  Steady::time_point used_at{};
  std::shared_ptr<UpstreamSet> upstreams = std::make_shared<UpstreamSet>();
  RouteSpec spec;  // the proxy's defaults for environments
};

struct Proxy::Impl {
  Impl(RouteService& r, http::Authenticator& k, env::Services* e, SessionService* ss,
       store::Store& s, metrics::Registry& m)
      : routes(r),
        keys(k),
        envs(e),
        sessions(ss),
        store(s),
        requests(m.CounterFamily("drover_gateway_requests_total",
                                 "Requests proxied, by route and status class.",
                                 {"tenant", "route", "code"})),
        retries(m.CounterFamily("drover_gateway_retries_total", "Tries after the first, by route.",
                                {"tenant", "route"})),
        ejections(m.CounterFamily("drover_gateway_upstream_ejections_total",
                                  "Upstreams ejected after consecutive failures, by route.",
                                  {"tenant", "route"})),
        seconds(m.HistogramFamily("drover_gateway_request_duration_seconds",
                                  "Proxied requests from head to end of answer, by route.",
                                  {"tenant", "route"}, metrics::LatencyBounds())) {
    m.AddCollector([this](std::string& out) { RenderUpstreams(out); });
    subscription = store.Subscribe([this](const store::Change& c) {
      bool ours =
          c.resync || std::find(c.topics.begin(), c.topics.end(), env::kTopic) != c.topics.end();
      if (!ours) return;
      std::lock_guard lock(env_mu);
      for (auto& [_, t] : env_targets) {
        std::lock_guard tl(t->mu);
        t->loaded_at = {};
      }
    });
  }
  ~Impl() { store.Unsubscribe(subscription); }

  RouteService& routes;
  http::Authenticator& keys;
  env::Services* envs;
  SessionService* sessions;
  store::Store& store;
  int subscription = -1;
  http::RateLimiter limiter;
  metrics::Family<metrics::Counter>& requests;
  metrics::Family<metrics::Counter>& retries;
  metrics::Family<metrics::Counter>& ejections;
  metrics::Family<metrics::Histogram>& seconds;

  std::mutex stats_mu;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<RouteStats>> stats;

  std::mutex env_mu;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<EnvTarget>> env_targets;

  asio::io_context checks;  // active health checks
  std::thread checks_thread;
  std::atomic<bool> stopping{false};

  RouteStats& StatsFor(const std::string& tenant, const std::string& label) {
    std::lock_guard lock(stats_mu);
    auto& s = stats[{tenant, label}];
    if (!s) {
      s = std::make_unique<RouteStats>();
      const char* classes[] = {"gone", "1xx", "2xx", "3xx", "4xx", "5xx"};
      for (int i = 0; i < 6; ++i) s->requests[i] = &requests.With({tenant, label, classes[i]});
      s->retries = &retries.With({tenant, label});
      s->ejections = &ejections.With({tenant, label});
      s->seconds = &seconds.With({tenant, label});
    }
    return *s;
  }

  void RenderUpstreams(std::string& out) {
    out +=
        "# HELP drover_gateway_upstreams Upstreams of each route by state (as this server sees"
        " them).\n# TYPE drover_gateway_upstreams gauge\n";
    auto now = Steady::now();
    auto render = [&](const std::string& tenant, const std::string& label, const UpstreamSet& set) {
      int64_t healthy = 0, ejected = 0, not_ready = 0;
      for (const auto& v : set.Snapshot(now)) {
        if (!v.ready) {
          ++not_ready;
        } else if (v.ejected) {
          ++ejected;
        } else {
          ++healthy;
        }
      }
      for (auto [state, n] : {std::pair<const char*, int64_t>{"healthy", healthy},
                              {"ejected", ejected},
                              {"not_ready", not_ready}}) {
        out += "drover_gateway_upstreams{";
        out += metrics::FormatLabels({"tenant", "route", "state"}, {tenant, label, state});
        out += "} " + std::to_string(n) + "\n";
      }
    };
    for (const auto& r : routes.All()) {
      if (r->spec.environment.empty()) render(r->route.tenant, r->route.name, *r->upstreams);
    }
    std::lock_guard lock(env_mu);
    for (const auto& [key, t] : env_targets) render(key.first, "env/" + key.second, *t->upstreams);
  }

  // Whether the route's retry budget allows one more retry now (and takes it).
  static bool TakeRetry(RouteStats& s) {
    std::lock_guard lock(s.mu);
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  }
  static void EarnRetries(RouteStats& s, double share) {
    std::lock_guard lock(s.mu);
    s.tokens = std::min(10.0, s.tokens + share);
  }

  // --- environments ---

  std::shared_ptr<EnvTarget> EnvTargetFor(const std::string& tenant, const std::string& name) {
    std::lock_guard lock(env_mu);
    auto& t = env_targets[{tenant, name}];
    if (!t) {
      t = std::make_shared<EnvTarget>();
      t->spec.retries = 1;
    }
    return t;
  }

  // Reads the environment and its running instances (a store read: on the store pool).
  static void LoadEnv(env::Services& envs, const std::string& tenant, const std::string& name,
                      EnvTarget& t, Status* status) {
    auto e = envs.environments.Get(tenant, name);
    std::lock_guard lock(t.mu);
    if (!e.ok()) {
      if (e.status().IsNotFound()) {
        t.found = false;
        t.loaded_at = Steady::now();
      }
      *status = e.status();
      return;
    }
    auto instances = envs.instances.Instances(tenant, name);
    if (!instances.ok()) {
      *status = instances.status();
      return;
    }
    t.env = std::move(*e);
    t.found = true;
    t.urls.clear();
    int64_t port = t.env.spec.service ? t.env.spec.service->port : 0;
    for (const auto& i : *instances) {
      if (i.state != env::InstanceState::kRunning || i.address.empty()) continue;
      // An address with a port is the service's (the local provider gives each instance its
      // own PORT); a bare host gets the spec's service port.
      std::string addr = i.address;
      if (addr.find(':') == std::string::npos) {
        if (port <= 0) continue;
        addr += ":" + std::to_string(port);
      }
      auto url = ParseUpstreamUrl("http://" + addr);
      if (url.ok()) t.urls.push_back(std::move(*url));
    }
    t.upstreams->Set(t.urls, /*ready=*/false);
    t.loaded_at = Steady::now();
    *status = Status::Ok();
  }
};

namespace {

// Reads the request body before the first try: whole when it is small (then a retry can send
// it again), else the first pieces. Error: the client's body is bad (answer it) or gone.
struct HeldBody {
  bool present = false;  // the request has a body
  bool done = true;      // `bytes` is all of it
  std::optional<uint64_t> length;
  std::string bytes;
};

asio::awaitable<Result<HeldBody>> HoldBody(Exchange& ex) {
  HeldBody b;
  Request& req = ex.request();
  std::string_view cl = req.Header("Content-Length");
  bool chunked = ContainsIgnoreCase(req.Header("Transfer-Encoding"), "chunked");
  if (!cl.empty()) {
    uint64_t n = 0;
    auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
    if (ec == std::errc() && p == cl.data() + cl.size()) b.length = n;
  }
  b.present = chunked || (b.length && *b.length > 0);
  if (!b.present) {
    if (b.length) b.length = 0;
    co_return b;
  }
  b.done = false;
  std::string piece;
  while (b.bytes.size() < kReplayable) {
    auto more = co_await ex.ReadBody(piece);
    if (!more.ok()) co_return more.status();
    b.bytes += piece;
    if (!*more) {
      b.done = true;
      break;
    }
  }
  co_return b;
}

// Writes `data` upstream, as a chunk when `chunked`.
asio::awaitable<boost::system::error_code> WriteUp(UpstreamConn& c, std::string_view data,
                                                   bool chunked) {
  if (data.empty()) co_return boost::system::error_code{};
  if (!chunked) {
    auto [ec, n] =
        co_await asio::async_write(c.stream, asio::buffer(data.data(), data.size()), kTuple);
    co_return ec;
  }
  std::string size = fmt::format("{:x}\r\n", data.size());
  std::array<asio::const_buffer, 3> parts{
      asio::buffer(size), asio::buffer(data.data(), data.size()), asio::buffer("\r\n", 2)};
  auto [ec, n] = co_await asio::async_write(c.stream, parts, kTuple);
  co_return ec;
}

// One try: a connection (kept alive or new), the request, and the answer's head.
asio::awaitable<Attempt> TryOnce(Exchange& ex, const Target& t, const Upstream& up, HeldBody& body,
                                 bool websocket, Steady::time_point deadline) {
  Attempt a;
  Request& req = ex.request();
  const RouteSpec& spec = *t.spec;
  auto now = Steady::now();
  if (now >= deadline) {
    a.kind = Attempt::kTimedOut;
    a.why = "the route's timeout passed";
    co_return a;
  }
  auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
  milliseconds per_try = spec.per_try_timeout.count() ? spec.per_try_timeout : spec.timeout;
  auto try_deadline = now + std::min(left, per_try);
  bool resendable = Idempotent(req.method) && body.done;
  if (!websocket) a.conn = TakeIdle(up.url.authority(), /*check=*/!resendable);
  if (!a.conn) {
    auto executor = co_await asio::this_coro::executor;
    auto c = co_await Connect(executor, up.url, std::min(spec.connect_timeout, left));
    if (!c.ok()) {
      a.kind = Attempt::kConnectFailed;
      a.why = c.status().message();
      co_return a;
    }
    a.conn = std::move(*c);
  }
  UpstreamConn& c = *a.conn;
  bool chunked = body.present && !body.length;
  std::string head = RequestHead(req, t, up.url, websocket, body.length, chunked);
  c.stream.expires_at(try_deadline);
  head += body.done && !chunked ? body.bytes : std::string();
  auto [wec, wn] = co_await asio::async_write(c.stream, asio::buffer(head), kTuple);
  if (wec) {
    a.kind = wec == beast::error::timeout ? Attempt::kTimedOut : Attempt::kFailed;
    a.why = "sending the request: " + wec.message();
    a.stale = c.reused && a.kind == Attempt::kFailed;
    co_return a;
  }
  if (body.present && (chunked || !body.done)) {
    // The body streams on from the client, piece by piece (the client is read only as fast as
    // the upstream takes it).
    boost::system::error_code ec = co_await WriteUp(c, body.bytes, chunked);
    std::string piece;
    bool more = !body.done;
    while (!ec && more) {
      auto r = co_await ex.ReadBody(piece);
      if (!r.ok()) {
        a.kind = Attempt::kClientFailed;
        a.why = r.status().message();
        co_return a;
      }
      more = *r;
      // Each piece gets the try's time again: a long upload is bounded by progress, not size.
      c.stream.expires_after(per_try);
      ec = co_await WriteUp(c, piece, chunked);
    }
    if (!ec && chunked) {
      auto [e2, n2] = co_await asio::async_write(c.stream, asio::buffer("0\r\n\r\n", 5), kTuple);
      ec = e2;
    }
    if (ec) {
      a.kind = ec == beast::error::timeout ? Attempt::kTimedOut : Attempt::kFailed;
      a.why = "sending the request body: " + ec.message();
      co_return a;
    }
    c.stream.expires_at(try_deadline);
  }
  for (;;) {
    a.parser = std::make_unique<ResponseParser>();
    a.parser->body_limit(boost::none);
    a.parser->header_limit(64 * 1024);
    if (req.method == Method::kHead) a.parser->skip(true);
    auto [rec, rn] = co_await bhttp::async_read_header(c.stream, c.buffer, *a.parser, kTuple);
    if (rec) {
      a.kind = rec == beast::error::timeout ? Attempt::kTimedOut : Attempt::kFailed;
      a.why = rec == beast::error::timeout ? "no answer within the try's timeout"
                                           : "reading the answer: " + rec.message();
      a.stale = c.reused && a.kind == Attempt::kFailed && rn == 0 && c.buffer.size() == 0;
      co_return a;
    }
    int status = static_cast<int>(a.parser->get().result_int());
    if (status >= 100 && status < 200 && status != 101) continue;  // interim answers
    break;
  }
  a.kind = Attempt::kResponse;
  co_return a;
}

// Copies bytes one way until either side closes; then closes both.
asio::awaitable<void> Pump(tcp::socket& from, tcp::socket& to) {
  std::vector<char> buf(16 * 1024);
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), kTuple);
    if (ec) break;
    auto [wec, w] = co_await asio::async_write(to, asio::buffer(buf.data(), n), kTuple);
    if (wec) break;
  }
  boost::system::error_code ignored;
  from.shutdown(tcp::socket::shutdown_both, ignored);
  to.shutdown(tcp::socket::shutdown_both, ignored);
}

// After the upstream's 101: the client's socket and the upstream's carry bytes both ways.
asio::awaitable<void> Tunnel(Exchange& ex, Attempt& a) {
  auto up = co_await ex.Upgrade(ClientHead(a.parser->get()));
  if (!up.ok()) co_return;
  tcp::socket client = std::move(up->socket);
  tcp::socket upstream = a.conn->stream.release_socket();
  if (!up->pending.empty()) {
    auto [ec, n] = co_await asio::async_write(upstream, asio::buffer(up->pending), kTuple);
    if (ec) co_return;
  }
  if (a.conn->buffer.size() > 0) {
    auto [ec, n] = co_await asio::async_write(client, a.conn->buffer.data(), kTuple);
    if (ec) co_return;
  }
  using namespace asio::experimental::awaitable_operators;
  co_await (Pump(client, upstream) || Pump(upstream, client));
}

// Streams the upstream's answer to the client. True when the connection may be kept.
asio::awaitable<bool> Relay(Exchange& ex, Attempt& a, milliseconds idle) {
  ResponseParser& p = *a.parser;
  std::optional<uint64_t> length;
  if (auto n = p.content_length()) length = *n;
  if (p.chunked()) length.reset();
  // The head waits for the body's first piece: a small answer leaves in one packet.
  if (!co_await ex.Begin(ClientHead(p.get()), length, /*defer=*/true)) co_return false;
  if (p.is_done()) {
    co_await ex.End();
    co_return p.keep_alive();
  }
  PieceBuffer buf;
  UpstreamConn& c = *a.conn;
  while (!p.is_done()) {
    p.get().body().data = buf.data();
    p.get().body().size = buf.size();
    boost::system::error_code ec;
    size_t used = 0;
    if (c.buffer.size() > 0) {
      // Bytes that came with the head (often a small answer's whole body): parsed here, without
      // another asynchronous read.
      used = p.put(c.buffer.data(), ec);
      c.buffer.consume(used);
      if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) ec = {};
    }
    if (!ec && used == 0 && !p.is_done()) {
      c.stream.expires_after(idle);
      auto [rec, n] = co_await bhttp::async_read(c.stream, c.buffer, p, kTuple);
      ec = rec == bhttp::error::need_buffer ? boost::system::error_code{} : rec;
    }
    size_t got = buf.size() - p.get().body().size;
    if (got > 0 && !co_await ex.Write(std::string_view(buf.data(), got))) co_return false;
    if (ec) {
      // The upstream broke off mid-answer: the client must see the answer end short.
      LogWarn("upstream {} broke off an answer: {}", c.authority, ec.message());
      throw std::runtime_error("upstream broke off the answer: " + ec.message());
    }
  }
  co_return co_await ex.End() && p.keep_alive();
}

}  // namespace

// The forwarding of one request to a target, with retries.
static asio::awaitable<void> Forward(Proxy::Impl& im, Exchange& ex, Target& t) {
  Request& req = ex.request();
  const RouteSpec& spec = *t.spec;
  RouteStats& stats = im.StatsFor(t.tenant, t.label);
  auto start = Steady::now();
  auto deadline = start + spec.timeout;
  bool websocket = IsWebSocket(req);
  auto held = co_await HoldBody(ex);
  if (!held.ok()) {
    int code = held.status().code() == Status::Code::kTooLarge ? 413 : 400;
    co_await ex.Reply(Problem(code, held.status().message()));
    co_return;
  }
  HeldBody& body = *held;
  bool may_retry = Idempotent(req.method) && body.done && !websocket;
  Proxy::Impl::EarnRetries(stats, spec.retry_budget);
  EjectionPolicy policy{spec.eject_after, spec.eject_for};
  std::vector<const Upstream*> tried;
  tried.reserve(static_cast<size_t>(spec.retries) + 2);
  bool resent_stale = false;
  for (int tries = 0;; ++tries) {
    // Another try when the method and body allow one, tries and time are left, and the
    // route's retry budget has one.
    auto retry = [&] {
      if (!may_retry || tries >= spec.retries || Steady::now() >= deadline) return false;
      if (!Proxy::Impl::TakeRetry(stats)) return false;
      stats.retries->Inc();
      return true;
    };
    auto up = t.upstreams->Pick(spec.balance, t.hash_key, tried, Steady::now());
    if (!up) {
      stats.requests[5]->Inc();
      co_await ex.Reply(Problem(503, fmt::format("{} has no healthy upstream", t.label)));
      co_return;
    }
    tried.push_back(up.get());
    Attempt a = co_await TryOnce(ex, t, *up, body, websocket, deadline);
    if (a.stale && may_retry && !resent_stale) {
      // Closed while idle, not a failure of the upstream: once more on a new connection.
      DropIdleTo(up->url.authority());
      resent_stale = true;
      tried.pop_back();
      --tries;
      continue;
    }
    if (a.kind == Attempt::kClientFailed) {
      t.upstreams->Done(up, true, policy, Steady::now());
      co_await ex.Reply(Problem(400, a.why));
      co_return;
    }
    int status = a.kind == Attempt::kResponse ? static_cast<int>(a.parser->get().result_int()) : 0;
    bool failed = a.kind != Attempt::kResponse || status == 502 || status == 503 || status == 504;
    if (t.upstreams->Done(up, !failed, policy, Steady::now())) {
      stats.ejections->Inc();
      LogWarn("gateway: upstream {} of {} ejected after {} failures in a row", up->url.text,
              t.label, spec.eject_after);
    }
    if (failed && retry()) continue;
    if (a.kind != Attempt::kResponse) {
      // Out of tries: the last failure answers.
      stats.requests[5]->Inc();
      stats.seconds->Observe(std::chrono::duration<double>(Steady::now() - start).count());
      co_await ex.Reply(Problem(a.kind == Attempt::kTimedOut ? 504 : 502,
                                fmt::format("upstream {}: {}", up->url.text, a.why)));
      co_return;
    }
    stats.requests[std::clamp(status / 100, 1, 5)]->Inc();
    if (websocket && status == 101) {
      co_await Tunnel(ex, a);
      co_return;
    }
    milliseconds idle = std::max(spec.timeout, milliseconds(1000));
    bool keep = co_await Relay(ex, a, idle);
    stats.seconds->Observe(std::chrono::duration<double>(Steady::now() - start).count());
    if (keep && !websocket && body.done) PutIdle(std::move(a.conn));
    co_return;
  }
}

namespace {

// The caller behind the request's bearer key, looked up on the store pool when not cached.
// Null with the refusal in *refusal.
asio::awaitable<std::shared_ptr<const http::Principal>> Caller(
    http::Authenticator& keys, Exchange& ex, std::optional<http::Response>* refusal) {
  std::string token(http::BearerToken(ex.request().Header("Authorization")));
  if (token.empty()) {
    *refusal = Unauthorized("missing API key: send 'Authorization: Bearer <key>'");
    co_return nullptr;
  }
  auto cached = keys.Cached(token);
  if (cached) co_return cached;
  Result<std::shared_ptr<const http::Principal>> found = Status::Unavailable("");
  std::function<void()> look = [&] { found = keys.Authenticate(token); };
  if (!co_await ex.RunBlocking(std::move(look))) {
    *refusal = http::Busy();
    co_return nullptr;
  }
  if (!found.ok()) {
    *refusal = http::Response::Problem(found.status());
    co_return nullptr;
  }
  co_return *found;
}

// The key that balance: hash uses for this request.
std::string HashKey(const RouteSpec& spec, const Request& req, const http::Principal* caller) {
  if (!spec.hash_header.empty()) return std::string(req.Header(spec.hash_header));
  if (!spec.hash_cookie.empty()) {
    return std::string(http::CookieValue(req.Header("Cookie"), spec.hash_cookie));
  }
  return caller ? caller->key_id : req.peer;
}

// The path sent upstream: the rest after /svc/NAME (or the whole path) and the query.
std::string UpstreamPath(const Request& req, bool strip) {
  std::string path = strip ? req.Param("rest") : std::string(req.path);
  if (path.empty()) path = "/";
  if (!req.query.empty() || req.target.find('?') != std::string_view::npos) {
    path += '?';
    path += req.query;
  }
  return path;
}

}  // namespace

static asio::awaitable<std::shared_ptr<EnvTarget>> AwakeTarget(Proxy::Impl& im, Exchange& ex,
                                                               const std::string& tenant,
                                                               const std::string& name,
                                                               const std::string& via);

// The per-user environment of key `key_id` made from `template_name`: "notebook-k-1a2b...".
static std::string PerUserName(const std::string& template_name, const std::string& key_id) {
  std::string name = template_name + "-";
  for (char c : key_id) name += (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
  return name;
}

// Creates the caller's environment from the template when it does not exist yet (a store
// write, waited for on the store pool). NotFound when the template does not exist.
static asio::awaitable<Status> EnsurePerUser(Proxy::Impl& im, Exchange& ex,
                                             const std::string& tenant, const std::string& name,
                                             const std::string& template_name) {
  if (!im.envs) co_return Status::Unavailable("this server has no environments");
  auto target = im.EnvTargetFor(tenant, name);
  {
    std::lock_guard lock(target->mu);
    if (target->found && Steady::now() - target->loaded_at < std::chrono::seconds(10)) {
      co_return Status::Ok();
    }
  }
  Status out;
  std::function<void()> ensure = [&] {
    auto have = im.envs->environments.Get(tenant, name);
    if (have.ok() || !have.status().IsNotFound()) {
      out = have.status();
      return;
    }
    auto tmpl = im.envs->environments.Get(tenant, template_name);
    if (!tmpl.ok()) {
      out = tmpl.status().IsNotFound()
                ? Status::NotFound(fmt::format("the per_user template environment '{}' does not"
                                               " exist",
                                               template_name))
                : tmpl.status();
      return;
    }
    // A template is usually kept at capacity 0; each caller's copy runs one instance.
    env::EnvironmentSpec spec = tmpl->spec;
    if (spec.capacity == "0") spec.capacity = "1";
    std::promise<Status> p;
    auto f = p.get_future();
    im.envs->environments.Put(
        tenant, name, std::move(spec),
        [&p](Result<std::pair<env::Environment, Written>> r) { p.set_value(r.status()); });
    out = f.get();
    if (out.ok()) LogInfo("gateway: made environment {}/{} from {}", tenant, name, template_name);
  };
  if (!co_await ex.RunBlocking(std::move(ensure))) co_return Status::Unavailable("busy");
  if (out.ok()) {
    std::lock_guard lock(target->mu);
    target->loaded_at = {};  // read it afresh
  }
  co_return out;
}

static asio::awaitable<void> ServeRoute(Proxy::Impl& im, Exchange& ex) {
  Request& req = ex.request();
  const std::string& name = req.Param("route");
  if (im.routes.Stale()) {
    Status s;
    std::function<void()> refresh = [&] { s = im.routes.Refresh(); };
    if (!co_await ex.RunBlocking(std::move(refresh))) {
      co_await ex.Reply(http::Busy());
      co_return;
    }
    if (!s.ok() && !im.routes.Find(name)) {
      co_await ex.Reply(http::Response::Problem(s));
      co_return;
    }
  }
  auto route = im.routes.Find(name);
  if (!route) {
    co_await ex.Reply(Problem(404, fmt::format("route '{}' does not exist", name)));
    co_return;
  }
  const RouteSpec& spec = route->spec;
  std::shared_ptr<const http::Principal> caller;
  if (spec.auth_required) {
    std::optional<http::Response> refusal;
    caller = co_await Caller(im.keys, ex, &refusal);
    if (!caller) {
      co_await ex.Reply(std::move(*refusal));
      co_return;
    }
    if (!caller->CanSeeTenant(route->route.tenant)) {
      co_await ex.Reply(Problem(404, fmt::format("route '{}' does not exist", name)));
      co_return;
    }
    if (caller->role == http::Role::kAgent) {
      co_await ex.Reply(Problem(403, "agent keys may only use agent endpoints"));
      co_return;
    }
    std::string_view role = http::RoleName(caller->role);
    if (!spec.roles.empty() &&
        std::find(spec.roles.begin(), spec.roles.end(), role) == spec.roles.end()) {
      co_await ex.Reply(Problem(403, fmt::format("route '{}' does not admit {} keys", name, role)));
      co_return;
    }
  }
  if (spec.rate_limit) {
    std::string bucket = "svc\n" + name + "\n" + (caller ? caller->key_id : req.peer);
    auto d = im.limiter.Take(bucket, spec.rate_limit->rps, spec.rate_limit->burst, Steady::now());
    if (!d.allowed) {
      co_await ex.Reply(TooManyRequests(d.retry_after_seconds));
      co_return;
    }
  }
  Target t;
  t.tenant = route->route.tenant;
  t.label = name;
  t.spec = &spec;
  t.path = UpstreamPath(req, spec.strip_prefix);
  t.strip_authorization = spec.auth_required;
  t.hash_key = HashKey(spec, req, caller.get());
  if (!spec.per_user_template.empty()) {
    // The caller's own environment, made from the template on the first request.
    std::string env_name = PerUserName(spec.per_user_template, caller->key_id);
    Status made = co_await EnsurePerUser(im, ex, t.tenant, env_name, spec.per_user_template);
    if (!made.ok()) {
      co_await ex.Reply(made.IsUnavailable() && made.message() == "busy"
                            ? http::Busy()
                            : http::Response::Problem(made));
      co_return;
    }
    auto target = co_await AwakeTarget(im, ex, t.tenant, env_name, "/svc/" + name + "/");
    if (!target) co_return;  // answered
    t.upstreams = target->upstreams;
  } else if (!spec.environment.empty()) {
    // Upstreams from an environment: its running instances.
    if (!im.envs) {
      co_await ex.Reply(Problem(503, "this server has no environments"));
      co_return;
    }
    auto target = co_await AwakeTarget(im, ex, t.tenant, spec.environment, "/svc/" + name + "/");
    if (!target) co_return;  // answered
    t.upstreams = target->upstreams;
  } else {
    t.upstreams = route->upstreams;
  }
  co_await Forward(im, ex, t);
}

namespace {

// An active health check: GET the health path; a 2xx or 3xx answer within kProbeTimeout is
// healthy.
asio::awaitable<bool> Probe(asio::any_io_executor ex, UpstreamUrl url, std::string path) {
  auto c = co_await Connect(ex, url, std::chrono::duration_cast<milliseconds>(kProbeTimeout));
  if (!c.ok()) co_return false;
  UpstreamConn& conn = **c;
  conn.stream.expires_after(kProbeTimeout);
  std::string req = "GET " + url.base + path + " HTTP/1.1\r\nHost: " + url.authority() +
                    "\r\nUser-Agent: drover-health-check\r\nConnection: close\r\n\r\n";
  auto [wec, wn] = co_await asio::async_write(conn.stream, asio::buffer(req), kTuple);
  if (wec) co_return false;
  ResponseParser p;
  p.skip(true);
  auto [rec, rn] = co_await bhttp::async_read_header(conn.stream, conn.buffer, p, kTuple);
  if (rec) co_return false;
  int status = static_cast<int>(p.get().result_int());
  co_return status >= 200 && status < 400;
}

// Probes the target's members that are not ready yet (or all of them with `all`); true when
// one is ready afterwards.
asio::awaitable<bool> CheckMembers(asio::any_io_executor ex, EnvTarget& t, bool all) {
  std::vector<UpstreamUrl> urls;
  std::string path;
  {
    std::lock_guard lock(t.mu);
    urls = t.urls;
    path = t.env.spec.service ? t.env.spec.service->health_path : "/healthz";
  }
  bool any = false;
  auto now = Steady::now();
  std::vector<UpstreamSet::View> views = t.upstreams->Snapshot(now);
  for (const auto& u : urls) {
    bool ready = false;
    for (const auto& v : views) {
      if (v.url == u.text) ready = v.ready;
    }
    if (!ready || all) {
      ready = co_await Probe(ex, u, path);
      t.upstreams->SetReady(u.text, ready);
    }
    any = any || ready;
  }
  co_return any;
}

}  // namespace

// Every kHealthEvery: the environments the proxy used lately are read again and their
// instances' health paths probed (an instance that stops answering gets no traffic; a new
// one gets traffic once it answers).
static asio::awaitable<void> HealthLoop(Proxy::Impl& im) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  while (!im.stopping) {
    timer.expires_after(kHealthEvery);
    co_await timer.async_wait(asio::use_awaitable);
    std::vector<std::pair<std::pair<std::string, std::string>, std::shared_ptr<EnvTarget>>> used;
    {
      std::lock_guard lock(im.env_mu);
      for (const auto& [key, t] : im.env_targets) {
        std::lock_guard tl(t->mu);
        if (Steady::now() - t->used_at < std::chrono::minutes(10)) used.emplace_back(key, t);
      }
    }
    for (auto& [key, t] : used) {
      if (im.stopping) break;
      Status s;
      Proxy::Impl::LoadEnv(*im.envs, key.first, key.second, *t, &s);
      if (s.ok()) co_await CheckMembers(ex, *t, true);
    }
  }
}

// The environment's target with at least one instance ready: read (cached for a second),
// woken when its capacity in force is 0, and held until an instance answers its health path
// (up to its wake_timeout). Null when the request was answered instead (404, 503, 504).
static asio::awaitable<std::shared_ptr<EnvTarget>> AwakeTarget(Proxy::Impl& im, Exchange& ex,
                                                               const std::string& tenant,
                                                               const std::string& name,
                                                               const std::string& via) {
  Request& req = ex.request();
  auto target = im.EnvTargetFor(tenant, name);
  auto load = [&]() -> asio::awaitable<Status> {
    Status s;
    std::function<void()> fn = [&] { Proxy::Impl::LoadEnv(*im.envs, tenant, name, *target, &s); };
    if (!co_await ex.RunBlocking(std::move(fn))) co_return Status::Unavailable("busy");
    co_return s;
  };
  bool stale;
  {
    std::lock_guard lock(target->mu);
    stale = Steady::now() - target->loaded_at > kEnvCacheFor;
    target->used_at = Steady::now();
  }
  if (stale) {
    Status s = co_await load();
    if (!s.ok() && !s.IsNotFound()) {
      co_await ex.Reply(s.message() == "busy" ? http::Busy() : http::Response::Problem(s));
      co_return nullptr;
    }
  }
  bool found, has_service, asleep;
  milliseconds wake_timeout, idle;
  {
    std::lock_guard lock(target->mu);
    found = target->found;
    has_service = found && target->env.spec.service.has_value();
    asleep = found && target->env.capacity() == "0";
    wake_timeout = target->env.spec.wake_timeout;
    idle = target->env.spec.idle_timeout;
  }
  if (!found) {
    co_await ex.Reply(Problem(404, fmt::format("environment '{}' does not exist", name)));
    co_return nullptr;
  }
  if (!has_service) {
    co_await ex.Reply(
        Problem(404, fmt::format("environment '{}' has no service to reach (spec.service)", name)));
    co_return nullptr;
  }
  auto executor = co_await asio::this_coro::executor;
  bool ready = false;
  for (const auto& v : target->upstreams->Snapshot(Steady::now())) ready = ready || v.ready;
  if (!ready) {
    // Woken from zero (or just started): the request waits until an instance answers its
    // health path, up to the environment's wake_timeout.
    if (asleep) {
      im.envs->environments.Wake(
          tenant, name, fmt::format("a request to {} (request {})", via, req.request_id),
          [tenant, name](Result<env::Environment> r) {
            if (!r.ok()) {
              LogWarn("waking {}/{}: {}", tenant, name, r.status().message());
            }
          });
    }
    auto until = Steady::now() + wake_timeout;
    asio::steady_timer timer(executor);
    // Checked often at first (an instance often starts in a fraction of a second), then less.
    milliseconds every(20);
    for (;;) {
      if (co_await CheckMembers(executor, *target, false)) break;
      if (Steady::now() >= until) {
        co_await ex.Reply(Problem(
            504, fmt::format("environment '{}' had no healthy instance within its wake_timeout"
                             " ({})",
                             name, FormatDuration(wake_timeout))));
        co_return nullptr;
      }
      timer.expires_after(every);
      every = std::min<milliseconds>(every * 3 / 2, milliseconds(250));
      co_await timer.async_wait(asio::use_awaitable);
      Status s = co_await load();
      if (s.IsNotFound()) {
        co_await ex.Reply(Problem(404, fmt::format("environment '{}' does not exist", name)));
        co_return nullptr;
      }
    }
  }
  // Proxied traffic is activity: the idle timeout runs from the last request (written at
  // most every idle_timeout / 4, and at most every 30 s).
  if (idle.count() > 0) {
    auto every = std::min<milliseconds>(idle / 4, std::chrono::seconds(30));
    bool touch = false;
    {
      std::lock_guard lock(target->mu);
      if (Steady::now() - target->touched_at >= every) {
        target->touched_at = Steady::now();
        touch = true;
      }
    }
    if (touch) {
      im.envs->environments.Touch(tenant, name, [tenant, name](Status s) {
        if (!s.ok()) LogWarn("recording activity of {}/{}: {}", tenant, name, s.message());
      });
    }
  }
  co_return target;
}

// /env/{environment}/...: the caller's own environment's service, woken when it sleeps.
static asio::awaitable<void> ServeEnvironment(Proxy::Impl& im, Exchange& ex) {
  Request& req = ex.request();
  const std::string& name = req.Param("environment");
  if (!im.envs) {
    co_await ex.Reply(Problem(404, "this server has no environments"));
    co_return;
  }
  bool read = req.method == Method::kGet || req.method == Method::kHead;
  // A login code (drover env open): traded for a session cookie, then the same URL without it.
  if (auto code = req.Query(kCodeParameter); code && read && im.sessions) {
    Result<std::string> token = Status::Unavailable("");
    std::function<void()> redeem = [&] {
      std::promise<Result<std::string>> p;
      auto f = p.get_future();
      im.sessions->Redeem(*code, name, [&p](Result<std::string> r) { p.set_value(std::move(r)); });
      token = f.get();
    };
    if (!co_await ex.RunBlocking(std::move(redeem))) {
      co_await ex.Reply(http::Busy());
      co_return;
    }
    if (!token.ok()) {
      co_await ex.Reply(http::Response::Problem(token.status()));
      co_return;
    }
    co_await ex.Reply(SessionRedirect(req, name, *token));
    co_return;
  }
  std::shared_ptr<const http::Principal> caller;
  std::string_view cookie = http::CookieValue(req.Header("Cookie"), kSessionCookie);
  if (http::BearerToken(req.Header("Authorization")).empty() && !cookie.empty() && im.sessions) {
    Result<std::shared_ptr<const http::Principal>> found = Status::Unavailable("");
    std::string token(cookie);
    std::function<void()> check = [&] { found = im.sessions->Check(token, name); };
    if (!co_await ex.RunBlocking(std::move(check))) {
      co_await ex.Reply(http::Busy());
      co_return;
    }
    if (!found.ok()) {
      co_await ex.Reply(Unauthorized(found.status().message()));
      co_return;
    }
    caller = *found;
  } else {
    std::optional<http::Response> refusal;
    caller = co_await Caller(im.keys, ex, &refusal);
    if (!caller) {
      co_await ex.Reply(std::move(*refusal));
      co_return;
    }
  }
  if (caller->role == http::Role::kAgent) {
    co_await ex.Reply(Problem(403, "agent keys may only use agent endpoints"));
    co_return;
  }
  if (caller->role == http::Role::kViewer && !read) {
    co_await ex.Reply(Problem(403, "viewer keys are read-only"));
    co_return;
  }
  const std::string& tenant = caller->tenant;
  auto target = co_await AwakeTarget(im, ex, tenant, name, "/env/" + name + "/");
  if (!target) co_return;  // answered
  Target t;
  t.tenant = tenant;
  t.label = "env/" + name;
  t.spec = &target->spec;
  t.path = UpstreamPath(req, true);
  t.strip_authorization = true;
  t.hash_key = caller->key_id;
  t.upstreams = target->upstreams;
  co_await Forward(im, ex, t);
}

Proxy::Proxy(RouteService& routes, http::Authenticator& keys, env::Services* envs,
             SessionService* sessions, store::Store& store, metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(routes, keys, envs, sessions, store, metrics)) {}

Proxy::~Proxy() { Stop(); }

void Proxy::AddRoutes(http::Router& router) {
  Impl* im = impl_.get();
  http::StreamOptions options;
  options.body = true;  // streamed through, never held whole
  for (Method m : {Method::kGet, Method::kHead, Method::kPost, Method::kPut, Method::kDelete,
                   Method::kPatch, Method::kOptions}) {
    http::AddStreamRoute(
        router, m, "/svc/{route}/{*rest}", http::Access::kPublic,
        [im](Exchange& ex) { return ServeRoute(*im, ex); }, options);
    http::AddStreamRoute(
        router, m, "/env/{environment}/{*rest}", http::Access::kPublic,
        [im](Exchange& ex) { return ServeEnvironment(*im, ex); }, options);
  }
}

void Proxy::Start() {
  if (impl_->checks_thread.joinable() || !impl_->envs) return;
  Impl* im = impl_.get();
  asio::co_spawn(im->checks, HealthLoop(*im), asio::detached);
  im->checks_thread = std::thread([im] {
    im->checks.run();
    DropIdle();
  });
}

void Proxy::Stop() {
  if (!impl_->checks_thread.joinable()) return;
  impl_->stopping = true;
  impl_->checks.stop();
  impl_->checks_thread.join();
}

}  // namespace drover::gateway
