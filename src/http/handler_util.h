#pragma once
// Small helpers shared by handlers: JSON bodies, paging limits, the tenant a request acts in.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <functional>

#include "common/status.h"
#include "http/message.h"

namespace drover::http {

// The body as a JSON object. An absent Content-Type is taken as JSON; any other type than
// application/json or */*+json is UnsupportedMedia.
Result<boost::json::object> ReadJsonBody(const Request& req);

// Parses ?limit= (default `def`, 1..max); InvalidArgument names the parameter.
Result<int> ReadLimit(const Request& req, int def, int max);

// The start of a history's window, Unix ms: `?range=` (a duration up to 24h; default 1h)
// before now. InvalidArgument names the parameter.
Result<int64_t> ReadRangeStart(const Request& req);

// Parses a boolean query parameter (true/false/yes/no/1/0; present without a value: true);
// false when absent. InvalidArgument names the parameter.
Result<bool> ReadBool(const Request& req, std::string_view name);

// The tenant a request acts in: the key's own, or for admin keys `?tenant=` when given.
// A non-admin naming another tenant gets NotFound (another tenant's resources do not exist
// for it); a bad name gets InvalidArgument.
Result<std::string> RequestTenant(const Request& req);

// Appends `,"next_cursor":"..."` (or null when `next` is empty) to a list body.
void AppendNextCursor(std::string& out, const std::string& next);

// The request body as a JSON value: application/json, or YAML (application/yaml, text/yaml).
Result<boost::json::value> ReadDocument(const Request& req);

// `next_cursor` of a list answer: null at the end.
void SetNextCursor(boost::json::object& body, const std::string& next);

// `v` serialized as an application/json response.
Response JsonResponse(int code, const boost::json::value& v);

// The answer to a declarative PUT: 201 created, 200 updated, or 200 with
// `X-Drover-Unchanged: true` when the resource already was as asked.
Response WrittenResponse(Written written, const boost::json::value& v);

// The completion of a write answered without a body: 204, or the problem.
std::function<void(Status)> NoContentOr(Responder respond);

// 503 with Retry-After: 1 — the server is waiting on its database (a full store pool, a
// stalled read): nothing was done; try again shortly.
Response Busy();

// Sends `s` as problem+json.
inline void SendError(const Responder& respond, const Status& s) { respond(Response::Problem(s)); }

// The tenant and the path's {name}, checked as a resource name (`what` names it in the error).
Result<std::pair<std::string, std::string>> TenantAndName(const Request& req,
                                                          std::string_view what);

// A list answer `{items, next_cursor}` from `service.List(tenant, cursor, limit)` (?cursor=,
// ?limit= 1..1000, default 100), each item as `to_json` shows it.
template <class Service, class JsonFn>
void RespondList(const Request& req, const Responder& respond, Service& service, JsonFn to_json) {
  auto tenant = RequestTenant(req);
  if (!tenant.ok()) return SendError(respond, tenant.status());
  auto limit = ReadLimit(req, 100, 1000);
  if (!limit.ok()) return SendError(respond, limit.status());
  auto page = service.List(*tenant, req.Query("cursor").value_or(""), *limit);
  if (!page.ok()) return SendError(respond, page.status());
  boost::json::array items;
  for (const auto& item : page->items) items.push_back(to_json(item));
  boost::json::object body{{"items", std::move(items)}};
  SetNextCursor(body, page->next_cursor);
  respond(JsonResponse(200, body));
}

}  // namespace drover::http
