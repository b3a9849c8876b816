#include "http/framing.h"

#include <fmt/format.h>

#include <boost/beast/http/rfc7230.hpp>

#include "common/text.h"

namespace drover::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;

void SplitTarget(std::string_view target, Request& req) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() &&
        EqualsIgnoreCase(target.substr(0, scheme.size()), scheme)) {
      auto slash = target.find('/', scheme.size());
      auto query = target.find('?', scheme.size());
      auto rest = std::min(slash, query);
      target = rest == std::string_view::npos ? std::string_view("/") : target.substr(rest);
      if (target.front() == '?') target = "/";  // "http://host?x": no path (RFC 9112: "/")
      break;
    }
  }
  req.target = target;
  auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string_view::npos) req.query = target.substr(q + 1);
}

std::string CheckFraming(const RequestParser& parser) {
  const auto& h = parser.get();
  auto te = h.find(bhttp::field::transfer_encoding);
  if (te == h.end()) return "";
  if (!parser.chunked()) {
    return "400 Transfer-Encoding must end with chunked (the only coding this server reads)";
  }
  if (h.count(bhttp::field::content_length)) {
    return "400 a request must not have both Transfer-Encoding and Content-Length";
  }
  for (const auto& f : h) {
    if (f.name() != bhttp::field::transfer_encoding) continue;
    for (auto coding : bhttp::token_list{f.value()}) {
      if (!EqualsIgnoreCase(std::string_view(coding.data(), coding.size()), "chunked")) {
        return fmt::format("501 transfer coding '{}' is not supported; send the body chunked",
                           std::string_view(coding.data(), coding.size()));
      }
    }
  }
  return "";
}

}  // namespace drover::http
