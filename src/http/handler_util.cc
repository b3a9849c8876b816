#include "http/handler_util.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cctype>
#include <charconv>

#include "common/clock.h"
#include "common/duration.h"
#include "common/json.h"
#include "common/names.h"
#include "common/text.h"
#include "common/yaml.h"

namespace drover::http {

namespace {

// The media type of the body, without parameters, lower case.
std::string MediaType(const Request& req) {
  std::string_view ct = req.Header("Content-Type");
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  while (!ct.empty() && ct.front() == ' ') ct.remove_prefix(1);
  std::string out(ct);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<boost::json::object> ReadJsonBody(const Request& req) {
  std::string ct = MediaType(req);
  // `curl -d` sends JSON as a form; like Consul and Nomad, take it when it parses as JSON.
  bool form = ct == "application/x-www-form-urlencoded";
  if (!ct.empty() && !form && ct != "application/json" && !ct.ends_with("+json")) {
    return Status::UnsupportedMedia(
        fmt::format("Content-Type '{}' is not supported here; send application/json", ct));
  }
  if (req.body.empty()) return Status::InvalidArgument("request body is empty; send a JSON object");
  auto obj = ParseJsonObject(req.body);
  if (form && !obj.ok() && obj.status().errors().empty()) {
    return Status::UnsupportedMedia(
        "the body is a form, not JSON; send a JSON object (Content-Type: application/json)");
  }
  return obj;
}

Result<int> ReadLimit(const Request& req, int def, int max) {
  auto v = req.Query("limit");
  if (!v) return def;
  int n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < 1 || n > max) {
    return Status::InvalidArgument(fmt::format("query parameter 'limit' must be 1..{}", max));
  }
  return n;
}

Result<int64_t> ReadRangeStart(const Request& req) {
  std::chrono::milliseconds range = std::chrono::hours(1);
  if (auto v = req.Query("range"); v && !v->empty()) {
    auto d = ParseDuration(*v);
    if (!d || d->count() <= 0 || *d > std::chrono::hours(24)) {
      return Status::InvalidArgument(
          "query parameter 'range' must be a duration up to 24h, like 1h");
    }
    range = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  return ToUnixMillis(SystemClock::Get().Now()) - range.count();
}

Result<bool> ReadBool(const Request& req, std::string_view name) {
  auto v = req.Query(name);
  if (!v) return false;
  if (v->empty()) return true;  // ?all
  if (auto b = ParseBool(*v)) return *b;
  return Status::InvalidArgument(
      fmt::format("query parameter '{}' must be true or false (or yes/no, 1/0)", name));
}

void AppendNextCursor(std::string& out, const std::string& next) {
  out += ",\"next_cursor\":";
  if (next.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, next);
  }
}

Result<std::string> RequestTenant(const Request& req) {
  auto t = req.Query("tenant");
  if (!t || t->empty()) return req.caller().tenant;
  if (!IsValidName(*t)) {
    return Status::InvalidArgument("query parameter 'tenant' " + std::string(kNameRule));
  }
  if (!req.caller().CanSeeTenant(*t)) return Status::NotFound("no such tenant");
  return *t;
}

Result<std::pair<std::string, std::string>> TenantAndName(const Request& req,
                                                          std::string_view what) {
  auto tenant = RequestTenant(req);
  if (!tenant.ok()) return tenant.status();
  const std::string& name = req.Param("name");
  if (!IsValidName(name)) {
    return Status::InvalidArgument(std::string(what) + " name " + std::string(kNameRule));
  }
  return std::make_pair(std::move(*tenant), name);
}

Result<boost::json::value> ReadDocument(const Request& req) {
  std::string ct = MediaType(req);
  if (ct == "application/yaml" || ct == "application/x-yaml" || ct == "text/yaml") {
    if (req.body.empty()) return Status::InvalidArgument("request body is empty");
    return ParseYaml(req.body);
  }
  auto obj = ReadJsonBody(req);
  if (!obj.ok()) {
    if (obj.status().code() == Status::Code::kUnsupportedMedia) {
      return Status::UnsupportedMedia(fmt::format(
          "Content-Type '{}' is not supported here; send application/json or application/yaml",
          ct));
    }
    return obj.status();
  }
  return boost::json::value(std::move(*obj));
}

void SetNextCursor(boost::json::object& body, const std::string& next) {
  body["next_cursor"] = next.empty() ? boost::json::value(nullptr) : boost::json::value(next);
}

Response JsonResponse(int code, const boost::json::value& v) {
  return Response::Json(code, boost::json::serialize(v));
}

std::function<void(Status)> NoContentOr(Responder respond) {
  return [respond = std::move(respond)](Status s) {
    if (!s.ok()) return SendError(respond, s);
    Response r;
    r.status = 204;
    respond(std::move(r));
  };
}

Response WrittenResponse(Written written, const boost::json::value& v) {
  auto r = JsonResponse(written == Written::kCreated ? 201 : 200, v);
  if (written == Written::kUnchanged) {
    static const std::string kUnchanged = "X-Drover-Unchanged";
    r.headers.emplace_back(kUnchanged, "true");
  }
  return r;
}

Response Busy() {
  auto r = Response::Problem(
      Status::Unavailable("the server is waiting on its database; try again shortly"));
  r.AddHeader("Retry-After", "1");
  return r;
}

}  // namespace drover::http
