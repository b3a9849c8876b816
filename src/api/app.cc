#include "api/app.h"

#include <fmt/format.h>

#include "auth/keys_api.h"
#include "common/json.h"
#include "control/variables_api.h"

namespace drover::api {

using http::Access;
using http::Method;
using http::Request;
using http::Responder;
using http::Response;

App::App(store::Store& store, const Clock& clock, http::PipelineOptions options)
    : store_(store),
      clock_(clock),
      started_(clock.Steady()),
      started_at_(FormatRfc3339(clock.Now())),
      keys_(store, clock),
      variables_(store, clock) {
  AddSystemRoutes();
  auth::AddKeyRoutes(router_, keys_);
  control::AddVariableRoutes(router_, variables_, store_);
  std::vector<std::string> names;
  for (const auto& r : router_.routes()) names.push_back(r.pattern);
  metrics_ = std::make_unique<http::Metrics>(std::move(names));
  pipeline_ =
      std::make_unique<http::Pipeline>(router_, *metrics_, keys_, limiter_, clock_, options);
}

void App::AddSystemRoutes() {
  router_.Add(Method::kGet, "/healthz", Access::kPublic, [](Request&, Responder respond) {
    respond(Response::Json(200, "{\"status\":\"ok\"}"));
  });
  router_.Add(Method::kGet, "/readyz", Access::kPublic, [this](Request&, Responder respond) {
    Status s = store_.Ping();
    if (!s.ok()) {
      return respond(Response::Problem(Status::Unavailable("store not reachable: " + s.message())));
    }
    respond(Response::Json(200, "{\"status\":\"ready\"}"));
  });
  router_.Add(Method::kGet, "/metrics", Access::kPublic, [this](Request&, Responder respond) {
    Response r = Response::Json(200, metrics_->Render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    respond(std::move(r));
  });
  router_.Add(Method::kGet, "/v1/openapi.json", Access::kAgent, [](Request&, Responder respond) {
    respond(Response::Json(200, std::string(OpenApiDocument())));
  });
  router_.Add(Method::kGet, "/v1/status", Access::kAny, [this](Request&, Responder respond) {
    double uptime = std::chrono::duration<double>(clock_.Steady() - started_).count();
    std::string out = fmt::format(
        "{{\"version\":\"{}\",\"backend\":\"{}\",\"started_at\":\"{}\",\"uptime_seconds\":{:.0f},"
        "\"index\":{}}}",
        DROVER_VERSION, store_.Backend(), started_at_, uptime, store_.LastIndex());
    auto r = Response::Json(200, std::move(out));
    r.AddHeader("X-Drover-Index", std::to_string(store_.LastIndex()));
    respond(std::move(r));
  });
}

}  // namespace drover::api
