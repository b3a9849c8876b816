#pragma once
// HTTP/1.1 response serialization: status line, headers, body, into one buffer.
#include <string>

#include "http/message.h"

namespace drover::http {

// Writes `resp` as an HTTP/1.x response into `out` (cleared first, capacity kept). `version` is
// 10 or 11. For HEAD the body is left out but Content-Length still tells its size. Header
// values must not contain CR or LF (handlers only set values drover controls).
void SerializeResponse(const Response& resp, unsigned version, bool keep_alive, bool head,
                       std::string& out);

// How a streamed response's body is delimited.
enum class BodyFraming {
  kLength,   // Content-Length: `length`
  kChunked,  // Transfer-Encoding: chunked
  kClose,    // until the connection closes (HTTP/1.0 clients)
  kNone,     // no body: 101 Switching Protocols, 204, 304
};

// The status line and headers of a streamed response (head.body is ignored): Content-Type when
// there is a body, then head.headers, then the framing and Connection headers.
void SerializeHead(const Response& head, unsigned version, bool keep_alive, BodyFraming framing,
                   uint64_t length, std::string& out);

// The reason phrase for a status code, e.g. "OK" for 200 and "Not Found" for 404.
std::string_view ReasonPhrase(int status);

}  // namespace drover::http
