#include "api/app.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <future>
#include <map>
#include <set>

#include "alerts/alerts_api.h"
#include "auth/keys_api.h"
#include "common/json.h"
#include "common/names.h"
#include "common/random.h"
#include "control/cc_api.h"
#include "control/variables_api.h"
#include "env/environments_api.h"
#include "events/events_api.h"
#include "gateway/proxy.h"
#include "gateway/routes_api.h"
#include "logs/logs_api.h"
#include "queues/queues_api.h"
#include "schedule/schedules_api.h"
#include "ui/ui_routes.h"
#include "workflows/workflows_api.h"

namespace drover::api {

using http::Access;
using http::Method;
using http::Request;
using http::Responder;
using http::Response;

App::App(store::Store& store, const Clock& clock, http::PipelineOptions options,
         coord::CoordinatorOptions coord, control::ControlCenterOptions cc,
         fleet::ControllerOptions fleet, schedule::SchedulerOptions sched,
         alerts::RunnerOptions alert_options, logs::LogOptions log_options)
    : store_(store),
      clock_(clock),
      started_(clock.Steady()),
      started_at_(FormatRfc3339(clock.Now())),
      keys_(store, clock),
      variables_(store, clock),
      env_(store, clock, keys_),
      coordinator_(store, WithControllerPokes(coord)),
      schedules_(store, clock),
      waiters_(store),
      change_log_(store) {
  env::ProviderPolicy providers = fleet.providers;
  controller_ = std::make_unique<fleet::Controller>(store_, env_, coordinator_, std::move(fleet));
  windows_ = std::make_unique<schedule::WindowBook>(schedules_, variables_, store_);
  env_.environments.SetHolds([this](const std::string& tenant, const std::string& env,
                                    int64_t now) { return windows_->At(tenant, env, now); },
                             [this] { return windows_->Version(); });
  queues_ = std::make_unique<queues::QueueService>(store_, clock_);
  topics_ = std::make_unique<queues::TopicService>(store_, *queues_);
  workflows_ = std::make_unique<workflows::WorkflowService>(store_);
  executions_ =
      std::make_unique<workflows::ExecutionService>(store_, *workflows_, *queues_, clock_);
  executions_->SetScale([this](std::string tenant, std::string env, std::string capacity,
                               std::function<void(Status)> done) {
    env_.environments.Scale(
        std::move(tenant), std::move(env), std::move(capacity),
        [done = std::move(done)](Result<env::Environment> r) { done(r.status()); });
  });
  // A topic's publish starts the workflows it triggers, in the same transaction.
  topics_->SetPublishHook(
      [this](store::Tx& tx, const std::string& tenant, const std::string& topic,
             const queues::OutgoingMessage& m) -> Result<std::vector<queues::Delivery>> {
        boost::json::object input{{"topic", topic}, {"body", m.body}};
        boost::json::object attrs;
        for (const auto& [k, v] : m.attributes) attrs[k] = v;
        input["attributes"] = std::move(attrs);
        auto started =
            executions_->StartFromTopicInTx(tx, tenant, topic, ToJson(input), m.dedup_id);
        if (!started.ok()) return started.status();
        std::vector<queues::Delivery> out;
        for (auto& s : *started) {
          out.push_back({"", {0, s.replayed}, std::move(s.workflow), std::move(s.id)});
        }
        return out;
      });
  sched.start_workflow = [this](std::string tenant, std::string workflow, std::string input,
                                std::string key, std::function<void(Result<std::string>)> done) {
    executions_->Create(std::move(tenant), std::move(workflow), std::move(input), std::move(key),
                        [done = std::move(done)](Result<workflows::ExecutionService::Created> r) {
                          if (!r.ok()) return done(r.status());
                          done(r->execution.id);
                        });
  };
  sched.cleanup_tasks.push_back([this] { return executions_->Expire().status(); });
  if (sched.server_id.empty()) sched.server_id = coord.server_id;
  sched.cleanup_tasks.push_back([this] { return queues_->Cleanup(); });
  sched.cleanup_tasks.push_back([this] { return queues_->RecordHistory(); });
  sched.cleanup_tasks.push_back(
      [this] { return sessions_ ? sessions_->Prune().status() : Status::Ok(); });
  sched.cleanup_tasks.push_back(
      [this, retention = sched.audit_retention] { return change_log_.Prune(retention).status(); });
  logs_ = std::make_unique<logs::LogStore>(store_, registry_, log_options);
  sched.cleanup_tasks.push_back([this] { return logs_->Prune(ToUnixMillis(clock_.Now())); });
  scheduler_ = std::make_unique<schedule::Scheduler>(schedules_, env_, coordinator_, store_,
                                                     std::move(sched));
  AddSystemRoutes();
  AddClusterRoute();
  auth::AddKeyRoutes(router_, keys_);
  control::AddVariableRoutes(router_, variables_, store_, waiters_);
  cc_views_ = control::AddControlCenterRoutes(
      router_, variables_,
      [this](const std::string& tenant, const std::string& env) {
        return env_.environments.AgentVars(tenant, env);
      },
      store_, waiters_, std::move(cc));
  env::AddEnvironmentRoutes(router_, env_, store_, waiters_, std::move(providers));
  schedule::AddScheduleRoutes(router_, schedules_, *scheduler_, env_.environments);
  events::AddEventRoutes(router_, change_log_, store_, waiters_);
  queues::AddQueueRoutes(router_, *queues_, *topics_, clock_);
  workflows::AddWorkflowRoutes(router_, *workflows_, *executions_, store_, waiters_);
  alerts_ = std::make_unique<alerts::AlertService>(store_);
  auto publish = [this](const std::string& tenant, const std::string& topic,
                        const std::string& body) {
    std::promise<Status> done;
    queues::OutgoingMessage m;
    m.body = body;
    m.attributes["source"] = "drover-alerts";
    topics_->Publish(tenant, topic, {std::move(m)},
                     [&done](Result<std::vector<std::vector<queues::Delivery>>> r) {
                       done.set_value(r.ok() ? Status::Ok() : r.status());
                     });
    return done.get_future().get();
  };
  if (alert_options.server_id.empty()) alert_options.server_id = coord.server_id;
  alert_runner_ = std::make_unique<alerts::AlertRunner>(
      *alerts_, store_, coordinator_, [this] { return registry_.Render(); }, std::move(publish),
      alert_options);
  alerts::AddAlertRoutes(router_, *alerts_, *alert_runner_);
  logs::AddLogRoutes(router_, *logs_, env_, waiters_);
  logs_->Start();
  routes_ = std::make_unique<gateway::RouteService>(store_);
  sessions_ = std::make_unique<gateway::SessionService>(store_, clock_);
  ui::AddUiRoutes(router_, sessions_.get());
  gateway::AddRouteRoutes(router_, *routes_, *sessions_, env_);
  proxy_ =
      std::make_unique<gateway::Proxy>(*routes_, keys_, &env_, sessions_.get(), store_, registry_);
  proxy_->AddRoutes(router_);
  std::vector<std::pair<std::string, std::string>> names;
  for (const auto& r : router_.routes()) {
    names.emplace_back(std::string(http::MethodName(r.method)), r.pattern);
  }
  metrics_ = std::make_unique<http::Metrics>(std::move(names));
  RegisterMetrics();
  options.dashboard_session = [this](const std::string& token) {
    return sessions_->Check(token, std::string(gateway::kDashboardScope));
  };
  options.on_refused = [this](const Request& req, const http::Route* route, const Response& resp) {
    RecordRefusal(req, route, resp);
  };
  pipeline_ =
      std::make_unique<http::Pipeline>(router_, *metrics_, keys_, limiter_, clock_, options);
}

App::~App() {
  if (gauges_) {
    store_.Unsubscribe(gauges_sub_);
    gauges_->Stop(runtime::WorkQueue::kUntilDone);
  }
  // The controller first (no reconcile after its leases go), then the coordinator, whose last
  // callbacks still reach a live controller.
  scheduler_->Stop();
  alert_runner_->Stop();
  logs_->Stop();
  proxy_->Stop();
  executions_->Stop();
  controller_->Stop();
  coordinator_.Stop();
}

coord::CoordinatorOptions App::WithControllerPokes(coord::CoordinatorOptions o) {
  // A lease gained or lost changes which environments this server reconciles: look at once.
  // (The coordinator starts after the controller exists: Start() comes after construction.)
  o.on_acquired = [this, then = std::move(o.on_acquired)](const store::Lease& l) {
    if (then) then(l);
    if (controller_) controller_->Poke();
    if (scheduler_) scheduler_->Poke();
  };
  o.on_lost = [this, then = std::move(o.on_lost)](const std::string& name) {
    if (then) then(name);
    if (controller_) controller_->Poke();
    if (scheduler_) scheduler_->Poke();
  };
  return o;
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
  router_.MarkMayBlock();  // it pings the store
  router_.Add(Method::kGet, "/metrics", Access::kPublic, [this](Request&, Responder respond) {
    Response r = Response::Json(200, registry_.Render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    respond(std::move(r));
  });
  router_.Add(Method::kGet, "/v1/openapi.json", Access::kPublic, [](Request&, Responder respond) {
    respond(Response::Json(200, std::string(OpenApiDocument())));
  });
  router_.Add(Method::kGet, "/v1/status", Access::kAny, [this](Request& req, Responder respond) {
    double uptime = std::chrono::duration<double>(clock_.Steady() - started_).count();
    std::string out = fmt::format(
        "{{\"version\":\"{}\",\"backend\":\"{}\",\"started_at\":\"{}\",\"uptime_seconds\":{:.0f},"
        "\"index\":{}",
        DROVER_VERSION, store_.Backend(), started_at_, uptime, store_.LastIndex());
    // Who is asking: the dashboard shows the actions this key's role may take.
    const http::Principal& p = *req.principal;
    out += ",\"caller\":{\"id\":";
    AppendJsonString(out, p.key_id);
    AppendJsonField(out, "name", p.key_name);
    AppendJsonField(out, "role", http::RoleName(p.role));
    AppendJsonField(out, "tenant", p.tenant);
    out += "}}";
    auto r = Response::Json(200, std::move(out));
    r.AddHeader("X-Drover-Index", std::to_string(store_.LastIndex()));
    respond(std::move(r));
  });
}

void App::RegisterMetrics() {
  registry_
      .GaugeFamily("drover_build_info", "The running drover's version and store backend.",
                   {"version", "backend"})
      .With({DROVER_VERSION, store_.Backend()})
      .Set(1);
  metrics_->Register(registry_);
  registry_.AddCollector([this](std::string& out) { controller_->RenderMetrics(out); });
  registry_.AddCollector([this](std::string& out) { scheduler_->RenderMetrics(out); });
  registry_.AddCollector([this](std::string& out) { queues_->RenderMetrics(out); });
  registry_.AddCollector([this](std::string& out) { executions_->RenderMetrics(out); });
  registry_.AddCollector([this](std::string& out) {
    out += fmt::format(
        "# HELP drover_audit_refusals_dropped_total Refused calls not written to the audit log "
        "(over its rate limit).\n# TYPE drover_audit_refusals_dropped_total counter\n"
        "drover_audit_refusals_dropped_total {}\n"
        "# HELP drover_auth_unknown_keys_total Unknown API keys refused without a store read "
        "(no signature of this database, or remembered as unknown).\n"
        "# TYPE drover_auth_unknown_keys_total counter\ndrover_auth_unknown_keys_total {}\n",
        change_log_.dropped_refusals(), keys_.unknown_without_read());
  });
  instances_by_state_ = &registry_.GaugeFamily(
      "drover_instances", "Instances by state, every tenant (refreshed every 15 s).", {"state"});
  environments_by_phase_ = &registry_.GaugeFamily(
      "drover_environments", "Environments by phase, every tenant (refreshed every 15 s).",
      {"phase"});
  schedules_total_ =
      &registry_.Gauge("drover_schedules", "Schedules, every tenant (refreshed every 15 s).");
  firings_by_status_ = &registry_.GaugeFamily(
      "drover_schedule_firings", "Firings kept, by status (refreshed every 15 s).", {"status"});
  registry_.AddCollector([this](std::string& out) {
    std::lock_guard lock(gauges_mu_);
    out += resource_gauges_;
  });
  metrics::AddProcessCollector(registry_);
}

void App::StartGauges() {
  if (gauges_) return;
  gauges_ =
      std::make_unique<runtime::WorkQueue>(runtime::WorkQueueOptions{.name = "gauges"},
                                           [this](const std::string&) { return RefreshGauges(); });
  gauges_->Start();
  gauges_->Add("store");
  // A change refreshes them within a second (coalesced: one refresh for a burst of changes).
  // Log lines are not counted there: a flood of them refreshes nothing.
  gauges_sub_ = store_.Subscribe([this](const store::Change& c) {
    bool only_logs = !c.resync && !c.topics.empty() &&
                     std::all_of(c.topics.begin(), c.topics.end(),
                                 [](const std::string& t) { return t == logs::kTopic; });
    if (!only_logs) gauges_->AddAfter("store", std::chrono::seconds(1));
  });
}

runtime::Outcome App::RefreshGauges() {
  constexpr auto kEvery = std::chrono::seconds(15);
  auto envs = env_.environments.Count(ToUnixMillis(clock_.Now()));
  if (!envs.ok()) return runtime::Outcome::Failed(envs.status());
  auto scheds = schedules_.Count();
  if (!scheds.ok()) return runtime::Outcome::Failed(scheds.status());
  // Every value a series ever had stays, at 0 when nothing has it now: a series that vanishes
  // would read as "no data" rather than "none".
  auto set = [](metrics::Family<metrics::Gauge>& fam, std::set<std::string>& seen,
                const std::map<std::string, int64_t>& counts) {
    for (const auto& [k, n] : counts) seen.insert(k);
    for (const auto& k : seen) {
      auto it = counts.find(k);
      fam.With({k}).Set(it == counts.end() ? 0 : static_cast<double>(it->second));
    }
  };
  // Every state and phase always has its series, 0 when nothing is in it.
  auto set_all = [](metrics::Family<metrics::Gauge>& fam, const auto& all, const auto& counts) {
    for (auto k : all) {
      auto it = counts.find(k);
      fam.With({std::string(env::Name(k))})
          .Set(it == counts.end() ? 0 : static_cast<double>(it->second));
    }
  };
  std::string resources =
      "# HELP drover_environment_degraded 1 while an environment is degraded (refreshed every "
      "15 s).\n# TYPE drover_environment_degraded gauge\n";
  auto labels = [&resources](const std::string& tenant, std::string_view name_label,
                             const std::string& name) {
    resources += "{tenant=";
    AppendJsonString(resources, tenant);  // a JSON string is a valid label value for names
    resources += fmt::format(",{}=", name_label);
    AppendJsonString(resources, name);
    resources += "} ";
  };
  for (const auto& [key, phase] : envs->phases) {
    resources += "drover_environment_degraded";
    labels(key.first, "environment", key.second);
    resources += phase == env::Phase::kDegraded ? "1\n" : "0\n";
  }
  resources +=
      "# HELP drover_environment_broken_instances Instances of an environment that are unhealthy "
      "or failed (refreshed every 15 s).\n# TYPE drover_environment_broken_instances gauge\n";
  for (const auto& [key, n] : envs->broken) {
    resources += "drover_environment_broken_instances";
    labels(key.first, "environment", key.second);
    resources += std::to_string(n) + "\n";
  }
  resources +=
      "# HELP drover_schedule_last_firing_failed 1 while a schedule's latest finished firing "
      "failed (refreshed every 15 s).\n# TYPE drover_schedule_last_firing_failed gauge\n";
  for (const auto& [key, failed] : scheds->last_failed) {
    resources += "drover_schedule_last_firing_failed";
    labels(key.first, "schedule", key.second);
    resources += failed ? "1\n" : "0\n";
  }
  static const std::set<std::string> kStatuses = {"pending", "ok", "failed"};
  std::lock_guard lock(gauges_mu_);
  if (seen_statuses_.empty()) seen_statuses_ = kStatuses;
  set_all(*instances_by_state_, env::kInstanceStates, envs->instances_by_state);
  set_all(*environments_by_phase_, env::kPhases, envs->environments_by_phase);
  set(*firings_by_status_, seen_statuses_, scheds->firings_by_status);
  schedules_total_->Set(static_cast<double>(scheds->schedules));
  resource_gauges_ = std::move(resources);
  return runtime::Outcome::After(kEvery);
}

// Which servers share the database and who holds which lease: for operators (admin keys).
void App::AddClusterRoute() {
  router_.Add(Method::kGet, "/v1/cluster", Access::kAdmin, [this](Request&, Responder respond) {
    auto v = coordinator_.View();
    if (!v.ok()) return respond(Response::Problem(v.status()));
    auto time = [](int64_t ms) { return FormatRfc3339(FromUnixMillis(ms)); };
    std::string out;
    out += "{\"server_id\":";
    AppendJsonString(out, v->server_id);
    out += fmt::format(",\"leader\":{},\"servers\":[", v->leader);
    for (size_t i = 0; i < v->servers.size(); ++i) {
      out += i ? ",{\"id\":" : "{\"id\":";
      AppendJsonString(out, v->servers[i].holder);
      out += fmt::format(",\"expires_at\":\"{}\"}}", time(v->servers[i].expires_at));
    }
    out += "],\"leases\":[";
    for (size_t i = 0; i < v->resources.size(); ++i) {
      const auto& l = v->resources[i];
      out += i ? ",{\"name\":" : "{\"name\":";
      AppendJsonString(out, l.name.substr(l.name.find('/') + 1));
      out += ",\"holder\":";
      AppendJsonString(out, l.holder);
      out += fmt::format(",\"generation\":{},\"expires_at\":\"{}\",\"live\":{}}}", l.generation,
                         time(l.expires_at), l.expires_at > v->now);
    }
    out += "]}";
    respond(Response::Json(200, std::move(out)));
  });
}

namespace {

// Printable ASCII of `s`, at most `max` bytes: a refused call's path may be anything.
std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

// "environments" -> "environment": the kind of the resources a collection holds.
std::string Singular(std::string_view collection) {
  std::string k(collection);
  if (k.ends_with("s")) k.pop_back();
  return k;
}

}  // namespace

void App::RecordRefusal(const Request& req, const http::Route* route, const Response& resp) {
  events::Refusal r;
  const http::Principal& who = req.caller();
  r.actor = who.authenticated() ? who.key_id : "anonymous";
  r.role = who.authenticated() ? std::string(http::RoleName(who.role)) : "none";
  r.tenant = who.tenant;
  if (who.role == http::Role::kAdmin) {
    if (auto t = req.Query("tenant"); t && IsValidName(*t)) r.tenant = *t;
  }
  r.request_id = req.request_id;
  r.status = resp.status;
  std::string method(http::MethodName(req.method));
  for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  r.op = method;
  // The kind and name: the last collection in the route followed by a parameter
  // (/v1/environments/{environment}/instances/{id}/heartbeat: an instance, its id), else the
  // route's first collection (/v1/keys: a key).
  std::vector<std::string_view> segs;
  std::string_view pattern = route ? std::string_view(route->pattern) : req.path;
  for (size_t pos = 1; pos <= pattern.size();) {
    size_t slash = pattern.find('/', pos);
    if (slash == std::string_view::npos) slash = pattern.size();
    segs.push_back(pattern.substr(pos, slash - pos));
    pos = slash + 1;
  }
  if (segs.size() > 1) r.kind = Singular(segs[1]);
  if (route) {
    for (size_t i = 1; i + 1 < segs.size(); ++i) {
      if (!segs[i].starts_with('{') && segs[i + 1].starts_with('{')) {
        r.kind = Singular(segs[i]);
        std::string_view param = segs[i + 1].substr(1, segs[i + 1].size() - 2);
        r.name = Printable(req.Param(param), 256);
      }
    }
  }
  if (!IsValidName(r.kind)) r.kind = "unknown";
  std::string summary = "{\"method\":";
  AppendJsonString(summary, http::MethodName(req.method));
  summary += ",\"path\":";
  AppendJsonString(summary, Printable(req.path, 256));
  summary += '}';
  r.summary = std::move(summary);
  change_log_.RecordRefusal(std::move(r));
}

}  // namespace drover::api
