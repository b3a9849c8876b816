#include "http/message.h"

#include <fmt/format.h>
#include <strings.h>

#include <algorithm>

#include "common/json.h"
#include "common/text.h"
#include "common/trace.h"
#include "http/serialize.h"

namespace drover::http {

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kGet:
      return "GET";
    case Method::kHead:
      return "HEAD";
    case Method::kPost:
      return "POST";
    case Method::kPut:
      return "PUT";
    case Method::kDelete:
      return "DELETE";
    case Method::kPatch:
      return "PATCH";
    case Method::kOptions:
      return "OPTIONS";
    case Method::kOther:
      return "OTHER";
  }
  return "OTHER";
}

Method ParseMethod(std::string_view s) {
  if (s == "GET") return Method::kGet;
  if (s == "HEAD") return Method::kHead;
  if (s == "POST") return Method::kPost;
  if (s == "PUT") return Method::kPut;
  if (s == "DELETE") return Method::kDelete;
  if (s == "PATCH") return Method::kPatch;
  if (s == "OPTIONS") return Method::kOptions;
  return Method::kOther;
}

void Request::Reset() {
  method = Method::kGet;
  target = path = query = {};
  headers.clear();
  body.clear();
  request_id.clear();
  principal.reset();
  params.clear();
  cancel_.reset();
  traceparent_.clear();
}

const std::string& Request::Traceparent() const {
  if (traceparent_.empty()) {
    std::string_view given = Header("traceparent");
    traceparent_ = ValidTraceparent(given) ? std::string(given) : NewTraceparent();
  }
  return traceparent_;
}

std::string_view Request::TraceId() const {
  return traceparent_.empty() ? TraceIdOf(Header("traceparent")) : TraceIdOf(traceparent_);
}

struct Request::CancelSlot {
  std::mutex mu;
  bool fired = false;
  std::vector<std::function<void()>> fns;
};

void Request::EnableCancel() const {
  if (!cancel_) cancel_ = std::make_shared<CancelSlot>();
}

void Request::OnCancel(std::function<void()> fn) const {
  if (!cancel_) cancel_ = std::make_shared<CancelSlot>();
  {
    std::lock_guard lock(cancel_->mu);
    if (!cancel_->fired) {
      cancel_->fns.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void Request::Cancel() const {
  if (!cancel_) return;
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lock(cancel_->mu);
    if (cancel_->fired) return;
    cancel_->fired = true;
    fns.swap(cancel_->fns);
  }
  for (auto& fn : fns) fn();
}

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

const http::Principal& Request::caller() const {
  static const http::Principal kNobody;
  return principal ? *principal : kNobody;
}

const std::string& Request::Param(std::string_view name) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return kEmpty;
}

namespace {

// Calls fn(name, value) for each `name=value` of a raw query string (both still %-encoded);
// stops when fn returns false.
template <typename F>
void ForEachQueryParam(std::string_view q, F&& fn) {
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    auto eq = part.find('=');
    std::string_view v = eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1);
    if (!fn(part.substr(0, eq), v)) return;
  }
}

// A query value decoded: '+' is a space, then %-escapes; false on a malformed escape.
bool DecodeQueryValue(std::string_view raw, std::string* out) {
  std::string plus_fixed(raw);
  std::replace(plus_fixed.begin(), plus_fixed.end(), '+', ' ');
  return PercentDecode(plus_fixed, out);
}

}  // namespace

std::optional<std::string> Request::Query(std::string_view name) const {
  std::optional<std::string> found;
  ForEachQueryParam(query, [&](std::string_view k, std::string_view v) {
    if (k != name) return true;
    std::string out;
    if (DecodeQueryValue(v, &out)) found = std::move(out);
    return false;
  });
  return found;
}

bool PercentDecode(std::string_view s, std::string* out) {
  out->clear();
  out->reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      *out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

int HttpStatusFor(const Status& s) {
  using C = Status::Code;
  switch (s.code()) {
    case C::kOk:
      return 200;
    case C::kInvalidArgument:
      return 400;
    case C::kValidation:
      return 422;
    case C::kUnauthenticated:
      return 401;
    case C::kPermissionDenied:
      return 403;
    case C::kNotFound:
      return 404;
    case C::kConflict:
      return 409;
    case C::kTooLarge:
      return 413;
    case C::kUnsupportedMedia:
      return 415;
    case C::kResourceExhausted:
      return 429;
    case C::kUnavailable:
      return 503;
    case C::kInternal:
      return 500;
  }
  return 500;
}

Status CheckParameters(const Request& req) {
  for (const auto& [name, value] : req.params) {
    if (auto p = TextProblem(value); !p.empty()) {
      return Status::InvalidArgument(fmt::format("path parameter '{}' {}", name, p),
                                     {{std::string(name), fmt::format("{}: text must be UTF-8 "
                                                                      "without NUL",
                                                                      p)}});
    }
  }
  Status bad;
  std::string key, value;
  ForEachQueryParam(req.query, [&](std::string_view k, std::string_view v) {
    bool ok_key = PercentDecode(k, &key);
    bool ok_value = DecodeQueryValue(v, &value);
    std::string field = ok_key && IsValidText(key) ? key : "(name)";
    std::string_view problem = !ok_key || !ok_value ? "has a malformed %-escape"
                               : !IsValidText(key)  ? TextProblem(key)
                                                    : TextProblem(value);
    if (problem.empty()) return true;
    bad = Status::InvalidArgument(fmt::format("query parameter '{}' {}", field, problem),
                                  {{"query." + field, std::string(problem)}});
    return false;
  });
  return bad;
}

namespace {

std::string ProblemBody(int status, std::string_view title, std::string_view detail,
                        const std::vector<FieldError>* errors) {
  std::string b = "{\"type\":\"about:blank\",\"title\":";
  AppendJsonString(b, title);
  b += ",\"status\":" + std::to_string(status) + ",\"detail\":";
  AppendJsonString(b, detail);
  if (errors && !errors->empty()) {
    b += ",\"errors\":[";
    for (size_t i = 0; i < errors->size(); ++i) {
      if (i) b += ',';
      b += "{\"field\":";
      AppendJsonString(b, (*errors)[i].field);
      b += ",\"message\":";
      AppendJsonString(b, (*errors)[i].message);
      b += '}';
    }
    b += ']';
  }
  b += '}';
  return b;
}

}  // namespace

Response Response::Problem(const Status& s) {
  Response r;
  r.status = HttpStatusFor(s);
  r.content_type = "application/problem+json";
  // Internal errors keep their detail out of the response: it is logged instead.
  std::string_view detail = r.status == 500 ? std::string_view("internal error; see the server log")
                                            : std::string_view(s.message());
  r.body = ProblemBody(r.status, ReasonPhrase(r.status), detail, &s.errors());
  if (r.status == 500) {
    r.log_detail = s.detail().empty() ? s.message() : s.message() + ": " + s.detail();
  } else {
    r.log_detail = s.detail();
  }
  if (r.status == 503 || r.status == 429) r.AddHeader("Retry-After", "1");
  return r;
}

Response Response::Problem(int status, std::string_view title, std::string_view detail) {
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = ProblemBody(status, title.empty() ? ReasonPhrase(status) : title, detail, nullptr);
  return r;
}

Responder::Responder() : slot_(std::make_shared<Slot>()) {}

void Responder::operator()(Response r) const {
  std::function<void()> ready;
  {
    std::lock_guard lock(slot_->mu);
    if (slot_->response) return;  // exactly once
    slot_->response = std::move(r);
    slot_->done.store(true, std::memory_order_release);
    ready = std::move(slot_->ready);
  }
  if (ready) ready();
}

void Responder::OnReady(std::function<void()> fn) const {
  {
    std::lock_guard lock(slot_->mu);
    if (!slot_->response) {
      slot_->ready = std::move(fn);
      return;
    }
  }
  fn();
}

bool Responder::ready() const { return slot_->done.load(std::memory_order_acquire); }

Response Responder::Take() const {
  // Once `done` is seen the response is never written again: no lock needed.
  return std::move(*slot_->response);
}

}  // namespace drover::http
