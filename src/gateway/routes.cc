#include "gateway/routes.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "common/log.h"
#include "events/change_log.h"

namespace drover::gateway {
namespace {

constexpr std::string_view kRoutesTopic = "routes";
constexpr events::SpecTable kTable{
    "routes", "route", kRoutesTopic, /*global_names=*/true,
    "route names are global (they are the first segment of /svc/NAME/); choose another"};

}  // namespace

RouteService::RouteService(store::Store& store) : store_(store) {
  subscription_ = store_.Subscribe([this](const store::Change& c) {
    if (c.resync || std::find(c.topics.begin(), c.topics.end(), kRoutesTopic) != c.topics.end()) {
      MarkStale();
    }
  });
}

RouteService::~RouteService() { store_.Unsubscribe(subscription_); }

void RouteService::Put(std::string tenant, std::string name, std::string spec_json,
                       std::function<void(Result<std::pair<Route, Written>>)> done) {
  auto out = std::make_shared<std::pair<Route, Written>>();
  out->first.tenant = std::move(tenant);
  out->first.name = std::move(name);
  out->first.spec_json = std::move(spec_json);
  store_.Write(
      [out](store::Tx& tx) { return events::PutSpecRow(tx, kTable, out->first, &out->second); },
      [this, out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        MarkStale();
        done(std::move(*out));
      });
}

Result<Route> RouteService::Get(const std::string& tenant, const std::string& name) {
  return events::GetSpecRow(store_, kTable, tenant, name);
}

Result<Page<Route>> RouteService::List(const std::string& tenant, const std::string& cursor,
                                       int limit) {
  return events::ListSpecRows(store_, kTable, tenant, cursor, limit);
}

void RouteService::Delete(std::string tenant, std::string name, std::function<void(Status)> done) {
  store_.Write([tenant = std::move(tenant), name = std::move(name)](
                   store::Tx& tx) { return events::DeleteSpecRow(tx, kTable, tenant, name); },
               [this, done = std::move(done)](Status s) {
                 MarkStale();
                 done(std::move(s));
               });
}

Status RouteService::Refresh() {
  std::lock_guard one(refresh_mu_);
  if (!Stale()) return Status::Ok();
  // The changes this read covers: one during it leaves the table stale.
  uint64_t covers = changes_.load(std::memory_order_acquire);
  std::vector<Route> rows;
  Status s = store_.Read([&](store::Tx& tx) { return events::ReadAllSpecRows(tx, kTable, &rows); });
  if (!s.ok()) return s;
  std::map<std::string, std::shared_ptr<const LiveRoute>> live;
  std::lock_guard lock(mu_);
  std::map<std::string, std::shared_ptr<UpstreamSet>> health;
  for (auto& r : rows) {
    std::error_code ec;
    auto doc = boost::json::parse(r.spec_json, ec);
    auto spec = ec ? Result<RouteSpec>(Status::Internal("stored spec is not JSON"))
                   : ParseRouteDocument(doc, r.name);
    if (!spec.ok()) {
      LogWarn("route {} ignored: its stored spec does not parse: {}", r.name,
              spec.status().ToString());
      continue;
    }
    auto lr = std::make_shared<LiveRoute>();
    auto it = health_.find(r.name);
    lr->upstreams = it != health_.end() ? it->second : std::make_shared<UpstreamSet>();
    lr->upstreams->Set(spec->upstreams);
    health[r.name] = lr->upstreams;
    lr->spec = std::move(*spec);
    lr->route = std::move(r);
    live[lr->route.name] = std::move(lr);
  }
  live_ = std::move(live);
  health_ = std::move(health);
  loaded_.store(covers, std::memory_order_release);
  return Status::Ok();
}

std::shared_ptr<const LiveRoute> RouteService::Find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(name);
  return it == live_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const LiveRoute>> RouteService::All() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const LiveRoute>> out;
  for (const auto& [_, r] : live_) out.push_back(r);
  return out;
}

}  // namespace drover::gateway
