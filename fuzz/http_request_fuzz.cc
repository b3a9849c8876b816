// HTTP/1.1 requests as bytes off the socket: the head and body through Beast's parser (chunked
// or by length, with the server's limits), then what drover adds: the framing rules, the target
// split, routing and the text check of every parameter. Nothing may crash, hang or leak, and a
// request the server would serve must be one it can describe in valid JSON.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>

#include "fuzz/fuzz_util.h"
#include "http/framing.h"
#include "http/router.h"

namespace {

const drover::http::Router& Routes() {
  static drover::http::Router* r = [] {
    auto* router = new drover::http::Router();
    auto nop = [](drover::http::Request&, drover::http::Responder) {};
    using drover::http::Access;
    using drover::http::Method;
    for (const char* p : {"/v1/variables/{key}", "/v1/environments/{name}/instances",
                          "/v1/instances/{id}/runs/{n}/log", "/healthz"}) {
      router->Add(Method::kGet, p, Access::kAny, nop);
    }
    router->Add(Method::kPut, "/v1/variables/{key}", Access::kAny, nop);
    return router;
  }();
  return *r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace drover;
  namespace bhttp = boost::beast::http;
  http::RequestParser parser;
  parser.body_limit(64 * 1024);
  parser.header_limit(32 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  std::string_view bytes = fuzz::AsText(data, size);
  // Fed in uneven pieces, as a socket delivers them.
  size_t fed = 0;
  while (fed < bytes.size() && !parser.is_done()) {
    size_t piece = std::min<size_t>(bytes.size() - fed, 1 + (bytes[fed] & 0x3f));
    auto used = parser.put(boost::asio::buffer(bytes.data() + fed, piece), ec);
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (used == 0) {
        // The parser wants more than this piece: give it everything left at once.
        used = parser.put(boost::asio::buffer(bytes.data() + fed, bytes.size() - fed), ec);
        if (ec == bhttp::error::need_more) break;
      }
    }
    if (ec) break;
    fed += used;
    if (used == 0) break;
  }
  if (!parser.is_header_done()) return 0;
  std::string why = http::CheckFraming(parser);
  if (!why.empty() && !(why.starts_with("400 ") || why.starts_with("501 "))) std::abort();
  if (ec || !parser.is_done() || !why.empty()) return 0;
  auto& msg = parser.get();
  http::Request req;
  req.method = http::ParseMethod(msg.method_string());
  http::SplitTarget(msg.target(), req);
  if (req.path.size() > req.target.size()) std::abort();
  for (const auto& f : msg) req.headers.emplace_back(f.name_string(), f.value());
  auto match = Routes().Find(req.method, req.path);
  req.params = std::move(match.params);
  Status s = http::CheckParameters(req);
  fuzz::RequireWritable(s);
  if (s.ok()) {
    // What a handler may read is text now.
    for (const auto& [k, v] : req.params) {
      if (!IsValidText(v)) std::abort();
    }
    for (const char* q : {"prefix", "cursor", "environment", "index", "wait", "tenant"}) {
      if (auto v = req.Query(q); v && !IsValidText(*v)) std::abort();
    }
  }
  // The 404 detail names the raw path: its JSON must stay valid.
  fuzz::RequireWritable(Status::NotFound("no route for " + std::string(req.path)));
  return 0;
}
