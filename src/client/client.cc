#include "client/client.h"

#include <fmt/format.h>
#include <strings.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace drover::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

std::string Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return {};
}

struct Client::Impl {
  std::atomic<bool> interrupted{false};
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  std::string host, port;
  beast::flat_buffer buffer;
};

Client::Client(Options options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  std::string_view a = options_.addr;
  if (a.starts_with("http://")) a.remove_prefix(7);
  while (!a.empty() && a.back() == '/') a.remove_suffix(1);
  auto colon = a.rfind(':');
  if (colon == std::string_view::npos) {
    impl_->host = std::string(a);
    impl_->port = "7400";
  } else {
    impl_->host = std::string(a.substr(0, colon));
    impl_->port = std::string(a.substr(colon + 1));
  }
}

Client::~Client() = default;

namespace {

// Whether `s` may go into a request line or a header as it is: no control character (a line
// break would start another header or request), and no space where `space_ok` is false.
bool SafeInRequest(std::string_view s, bool space_ok) {
  for (unsigned char ch : s) {
    if (ch < 0x20 || ch == 0x7f || (!space_ok && ch == ' ')) return false;
  }
  return true;
}

}  // namespace

Result<Response> Client::Do(std::string_view method, std::string_view target, std::string_view body,
                            std::vector<std::pair<std::string, std::string>> headers) {
  auto& im = *impl_;
  if (im.interrupted) return Status::Unavailable("interrupted");
  if (options_.addr.starts_with("https://")) {
    return Status::InvalidArgument("https:// addresses are not supported yet; use http://");
  }
  // Nothing a caller passes on (a rendered URL, a header from a user's data) may smuggle a
  // line into the request.
  if (!SafeInRequest(method, false) || !SafeInRequest(target, false)) {
    return Status::InvalidArgument("the URL has a space or a control character");
  }
  for (const auto& [k, v] : headers) {
    if (k.empty() || !SafeInRequest(k, false) || !SafeInRequest(v, true)) {
      return Status::InvalidArgument(
          fmt::format("header '{}' has a line break or a control character", k.substr(0, 64)));
    }
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool fresh = false;
    beast::error_code ec;
    if (!im.stream) {
      fresh = true;
      im.ioc.restart();
      tcp::resolver resolver(im.ioc);
      auto results = resolver.resolve(im.host, im.port, ec);
      if (ec) {
        return Status::Unavailable(
            fmt::format("cannot resolve {}: {}", options_.addr, ec.message()));
      }
      im.stream.emplace(im.ioc);
      im.stream->expires_after(options_.timeout);
      im.stream->async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
      im.ioc.run();
      if (ec) {
        im.stream.reset();
        return Status::Unavailable(
            fmt::format("cannot connect to {}: {}", options_.addr, ec.message()));
      }
      im.buffer.clear();
    }
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, im.host);
    req.set(bhttp::field::user_agent, "drover/" DROVER_VERSION);
    if (!options_.token.empty()) req.set(bhttp::field::authorization, "Bearer " + options_.token);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    for (auto& [k, v] : headers) {
      if (v.empty()) {
        req.erase(k);  // an empty value removes a default header (e.g. Content-Type)
      } else {
        req.set(k, v);
      }
    }
    req.body() = std::string(body);
    req.prepare_payload();
    req.keep_alive(true);

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (method == "HEAD") parser.skip(true);
    // Interrupt's cancel may have run while the connection was made, with nothing to cancel
    // yet: a blocking request sent now would wait out its whole time.
    if (im.interrupted) {
      im.stream.reset();
      return Status::Unavailable("interrupted");
    }
    im.ioc.restart();
    im.stream->expires_after(options_.timeout);
    bhttp::async_write(*im.stream, req, [&](beast::error_code e, size_t) {
      ec = e;
      if (e) return;
      bhttp::async_read(*im.stream, im.buffer, parser,
                        [&](beast::error_code e2, size_t) { ec = e2; });
    });
    im.ioc.run();
    if (ec && im.interrupted) {
      im.stream.reset();
      return Status::Unavailable("interrupted");
    }
    if (ec) {
      im.stream.reset();
      // A kept-alive connection the server closed meanwhile: retry once on a new one.
      if (!fresh && (ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
                     ec == asio::error::broken_pipe || ec == asio::error::eof)) {
        continue;
      }
      return Status::Unavailable(
          fmt::format("request to {} failed: {}", options_.addr, ec.message()));
    }
    auto& msg = parser.get();
    Response r;
    r.status = static_cast<int>(msg.result_int());
    r.body = std::move(msg.body());
    for (const auto& f : msg)
      r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    if (!msg.keep_alive()) im.stream.reset();
    return r;
  }
  return Status::Unavailable("request failed twice");
}

void Client::Interrupt() {
  impl_->interrupted = true;
  asio::post(impl_->ioc, [im = impl_.get()] {
    if (im->stream) im->stream->cancel();
  });
}

Status Client::ToStatus(const Response& r) {
  if (r.ok()) return Status::Ok();
  std::string detail = fmt::format("HTTP {}", r.status);
  std::vector<FieldError> errors;
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (auto* d = o.if_contains("detail"); d && d->is_string()) {
      detail = fmt::format("{} (HTTP {})", std::string_view(d->as_string()), r.status);
    } else if (auto* t = o.if_contains("title"); t && t->is_string()) {
      detail = fmt::format("{} (HTTP {})", std::string_view(t->as_string()), r.status);
    }
    if (auto* es = o.if_contains("errors"); es && es->is_array()) {
      for (const auto& e : es->as_array()) {
        if (!e.is_object()) continue;
        auto* f = e.as_object().if_contains("field");
        auto* m = e.as_object().if_contains("message");
        if (f && m && f->is_string() && m->is_string()) {
          errors.push_back({std::string(f->as_string()), std::string(m->as_string())});
        }
      }
    }
  }
  switch (r.status) {
    case 401:
      return Status::Unauthenticated(detail);
    case 403:
      return Status::PermissionDenied(detail);
    case 404:
      return Status::NotFound(detail);
    case 409:
      return Status::Conflict(detail);
    case 422:
      return Status::Validation(std::move(errors), detail);
    case 429:
      return Status::ResourceExhausted(detail);
    case 503:
      return Status::Unavailable(detail);
    default:
      if (r.status >= 500) return Status::Internal(detail);
      return Status::InvalidArgument(detail);
  }
}

}  // namespace drover::client
