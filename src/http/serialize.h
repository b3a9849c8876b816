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

// The reason phrase for a status code, e.g. "OK" for 200 and "Not Found" for 404.
std::string_view ReasonPhrase(int status);

}  // namespace drover::http
