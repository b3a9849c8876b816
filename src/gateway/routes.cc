#include "gateway/routes.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "common/log.h"
#include "events/change_log.h"

namespace drover::gateway {
namespace {

constexpr std::string_view kRoutesTopic = "routes";
constexpr std::string_view kColumns =
    "SELECT tenant, name, spec, created_at, updated_at, modify_index FROM routes";

Route ReadRoute(const store::Row& r) {
  Route x;
  x.tenant = r.String(0);
  x.name = r.String(1);
  x.spec_json = r.String(2);
  x.created_at_ms = r.Int(3);
  x.updated_at_ms = r.Int(4);
  x.modify_index = r.Int(5);
  return x;
}

Status NoRoute(std::string_view name) {
  return Status::NotFound(fmt::format("route '{}' does not exist", name));
}

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
      [out](store::Tx& tx) -> Status {
        Route& r = out->first;
        std::optional<Route> old;
        DROVER_RETURN_IF_ERROR(tx.Query(std::string(kColumns) + " WHERE name = ?", {r.name},
                                        [&](const store::Row& row) { old = ReadRoute(row); }));
        if (old && old->tenant != r.tenant) {
          return Status::Conflict(fmt::format(
              "route name '{}' is taken: route names are global (they are the first segment of"
              " /svc/NAME/); choose another",
              r.name));
        }
        if (old && old->spec_json == r.spec_json) {
          r = *old;
          out->second = Written::kUnchanged;
          return Status::Ok();
        }
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        r.created_at_ms = old ? old->created_at_ms : *now;
        r.updated_at_ms = *now;
        r.modify_index = *idx;
        DROVER_RETURN_IF_ERROR(
            tx.Exec("INSERT INTO routes (name, tenant, spec, created_at, updated_at, modify_index)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                    " spec = excluded.spec, updated_at = excluded.updated_at,"
                    " modify_index = excluded.modify_index",
                    {r.name, r.tenant, r.spec_json, r.created_at_ms, *now, *idx})
                .status());
        out->second = old ? Written::kUpdated : Written::kCreated;
        DROVER_RETURN_IF_ERROR(tx.Notify(kRoutesTopic));
        return events::Record(tx, {r.tenant, "route", r.name, old ? "updated" : "created", ""});
      },
      [this, out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        MarkStale();
        done(std::move(*out));
      });
}

Result<Route> RouteService::Get(const std::string& tenant, const std::string& name) {
  std::optional<Route> r;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " WHERE name = ? AND tenant = ?", {name, tenant},
                    [&](const store::Row& row) { r = ReadRoute(row); });
  });
  if (!s.ok()) return s;
  if (!r) return NoRoute(name);
  return std::move(*r);
}

Result<Page<Route>> RouteService::List(const std::string& tenant, const std::string& cursor,
                                       int limit) {
  Page<Route> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " WHERE tenant = ? AND name > ? ORDER BY name LIMIT ?",
                    {tenant, cursor, int64_t{limit} + 1},
                    [&](const store::Row& r) { page.items.push_back(ReadRoute(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const Route& r) { return r.name; });
  return page;
}

void RouteService::Delete(std::string tenant, std::string name, std::function<void(Status)> done) {
  store_.Write(
      [tenant = std::move(tenant), name = std::move(name)](store::Tx& tx) -> Status {
        auto n = tx.Exec("DELETE FROM routes WHERE name = ? AND tenant = ?", {name, tenant});
        if (!n.ok()) return n.status();
        if (*n == 0) return NoRoute(name);
        DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
        DROVER_RETURN_IF_ERROR(tx.Notify(kRoutesTopic));
        return events::Record(tx, {tenant, "route", name, "deleted", ""});
      },
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
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kColumns) + " ORDER BY name", {},
                    [&](const store::Row& r) { rows.push_back(ReadRoute(r)); });
  });
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
