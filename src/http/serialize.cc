#include "http/serialize.h"

#include <charconv>

namespace drover::http {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

namespace {
void AppendInt(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// The status line, Content-Type (when `typed`) and the response's own header lines.
void AppendHead(const Response& r, unsigned version, bool typed, std::string& out) {
  out.clear();
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  AppendInt(out, static_cast<uint64_t>(r.status));
  out += ' ';
  out += ReasonPhrase(r.status);
  out += "\r\n";
  if (typed && !r.content_type.empty()) {  // empty: the headers carry it (a proxied answer)
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\n";
  }
  for (const auto& [k, v] : r.headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  if (r.extra_headers) out += *r.extra_headers;
}

}  // namespace

void SerializeHead(const Response& head, unsigned version, bool keep_alive, BodyFraming framing,
                   uint64_t length, std::string& out) {
  AppendHead(head, version, framing != BodyFraming::kNone, out);
  switch (framing) {
    case BodyFraming::kLength:
      out += "Content-Length: ";
      AppendInt(out, length);
      out += "\r\n";
      break;
    case BodyFraming::kChunked:
      out += "Transfer-Encoding: chunked\r\n";
      break;
    case BodyFraming::kClose:
      keep_alive = false;
      break;
    case BodyFraming::kNone:
      break;
  }
  if (head.status != 101) {
    if (!keep_alive && version != 10) out += "Connection: close\r\n";
    if (keep_alive && version == 10) out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

void SerializeResponse(const Response& resp, unsigned version, bool keep_alive, bool head,
                       std::string& out) {
  AppendHead(resp, version, !resp.body.empty(), out);
  bool no_body = resp.status == 204 || resp.status == 304 || resp.status < 200;
  if (!no_body) {
    out += "Content-Length: ";
    AppendInt(out, resp.body.size());
    out += "\r\n";
  }
  // HTTP/1.1 keeps the connection by default; 1.0 closes unless told to keep it.
  if (!keep_alive && version != 10) out += "Connection: close\r\n";
  if (keep_alive && version == 10) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  if (!head && !no_body) out += resp.body;
}

}  // namespace drover::http
