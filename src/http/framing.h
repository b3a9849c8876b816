#pragma once
// HTTP/1.1 framing rules the Beast parser leaves to us: how a request's body is delimited and
// what its target names. Used by the server (server.cc) and the request fuzzer; Beast types, so
// handlers never include it.
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

#include "http/message.h"

namespace drover::http {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Sets req.target/path/query from a request target. The absolute form (`GET http://host/x`,
// RFC 9112 §3.2.2) is accepted and reduced to its path and query.
void SplitTarget(std::string_view target, Request& req);

// RFC 9112 §6.3: a Transfer-Encoding whose last coding is not chunked leaves the body's length
// unknown; reading it by Content-Length instead is how requests are smuggled past proxies.
// "" when the framing of the parsed head is sound, else "400 reason" or "501 reason".
std::string CheckFraming(const RequestParser& parser);

}  // namespace drover::http
