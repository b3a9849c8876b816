#pragma once
// Transport-neutral HTTP request and response. Handlers are plain functions of these types and
// never see Beast, so they compile fast and are tested without sockets.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "http/principal.h"

namespace drover::http {

enum class Method { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOther };
std::string_view MethodName(Method m);
Method ParseMethod(std::string_view s);

struct Request {
  Method method = Method::kGet;
  std::string_view target;  // path and query, as sent
  std::string_view path;    // without the query
  std::string_view query;   // after '?', without it
  // Views into the transport's buffers: valid until the response has been written.
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string body;
  // The client's address ("127.0.0.1", "::1"), set by the transport once per connection
  // (Reset keeps it); empty when unknown.
  std::string peer;

  // Filled by the pipeline.
  std::string request_id;
  std::shared_ptr<const http::Principal> principal;  // null on public routes
  // The authenticated caller (an empty principal on public routes).
  const http::Principal& caller() const;
  std::vector<std::pair<std::string_view, std::string>> params;  // path parameters, decoded

  // The request's W3C traceparent: the caller's (a valid `traceparent` header), else one
  // started on first use (common/trace.h). Not thread-safe: the handler's thread.
  const std::string& Traceparent() const;
  // The trace id the access log names: the started or given trace's, "" when it has none.
  std::string_view TraceId() const;

 private:
  mutable std::string traceparent_;
  struct CancelSlot;
  mutable std::shared_ptr<CancelSlot> cancel_;

 public:
  // Clears every field for the next request on the connection, keeping vector capacity.
  void Reset();

  // Cancellation: a handler that parks the request (a blocking read) says how to give up early;
  // the transport calls Cancel() when the client goes away before the answer, so a killed
  // client does not hold its wait until it runs out. `fn` runs once (at once if the request is
  // already cancelled). OnCancel is called by the handler before it returns (on the I/O thread);
  // Cancel from any thread.
  void OnCancel(std::function<void()> fn) const;
  // Makes the request cancellable before its handler runs on another thread (the transport
  // then watches the client whatever the handler does; OnCancel and Cancel may race safely).
  void EnableCancel() const;
  bool cancellable() const { return cancel_ != nullptr; }
  void Cancel() const;
  // A header's value (name case-insensitive), empty when absent.
  std::string_view Header(std::string_view name) const;
  // A path parameter by name ("" when absent).
  const std::string& Param(std::string_view name) const;
  // A query parameter, percent-decoded; nullopt when absent.
  std::optional<std::string> Query(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string_view content_type = "application/json";  // static strings only
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Header lines prepared once and shared by many answers ("Name: value\r\n" each), sent as
  // they are after `headers` (e.g. a cached control-center view's).
  std::shared_ptr<const std::string> extra_headers;
  // What the server's log gets about a failure and the client never sees (a database's own
  // error text, a 500's cause): logged with the request id by the pipeline.
  std::string log_detail;

  Response() { headers.reserve(4); }  // X-Request-Id and a few more, without regrowing
  static Response Json(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  // RFC 9457 problem+json for a non-OK status.
  static Response Problem(const Status& s);
  static Response Problem(int status, std::string_view title, std::string_view detail);
  void AddHeader(std::string_view name, std::string_view value) {
    headers.emplace_back(std::string(name), std::string(value));
  }
};

// The HTTP status for a Status code.
int HttpStatusFor(const Status& s);

// Delivers a handler's response exactly once, from any thread. Copyable; copies share the slot.
class Responder {
 public:
  Responder();
  void operator()(Response r) const;
  // REQUIRES: called once, by the transport. `fn` runs when the response is ready (at once if
  // it already is), on whatever thread delivered it.
  void OnReady(std::function<void()> fn) const;
  // True once a response was delivered.
  bool ready() const;
  // The response; REQUIRES: ready.
  Response Take() const;

 private:
  struct Slot {
    std::mutex mu;
    std::optional<Response> response;  // written once under mu, then published by `done`
    std::function<void()> ready;
    std::atomic<bool> done{false};
  };
  std::shared_ptr<Slot> slot_;
};

using Handler = std::function<void(Request&, Responder)>;

// Percent-decodes `s` ('+' stays '+'); false on a malformed escape.
bool PercentDecode(std::string_view s, std::string* out);

// InvalidArgument naming the first path parameter (by name) or query parameter ("query.NAME")
// that is not UTF-8 text without NUL or has a malformed %-escape. The pipeline checks every
// request once, so handlers, stores and logs never see other bytes.
Status CheckParameters(const Request& req);

}  // namespace drover::http
