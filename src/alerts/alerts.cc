#include "alerts/alerts.h"

#include <fmt/format.h>

#include <memory>
#include <set>

#include "alerts/defaults.h"

namespace drover::alerts {

void AlertService::Put(std::string tenant, std::string name, std::string spec_json,
                       std::function<void(Result<std::pair<AlertRule, Written>>)> done) {
  auto out = std::make_shared<std::pair<AlertRule, Written>>();
  out->first.tenant = std::move(tenant);
  out->first.name = std::move(name);
  out->first.spec_json = std::move(spec_json);
  store_.Write(
      [out](store::Tx& tx) {
        return events::PutSpecRow(tx, kAlertTable, out->first, &out->second);
      },
      [out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*out));
      });
}

Result<AlertRule> AlertService::Get(const std::string& tenant, const std::string& name) {
  return events::GetSpecRow(store_, kAlertTable, tenant, name);
}

Result<Page<AlertRule>> AlertService::List(const std::string& tenant, const std::string& cursor,
                                           int limit) {
  return events::ListSpecRows(store_, kAlertTable, tenant, cursor, limit);
}

void AlertService::Delete(std::string tenant, std::string name, std::function<void(Status)> done) {
  // Everything of the rule goes with it: a rule created again under the name starts clean (no
  // silence, pending state or history of the old one).
  store_.Write(
      [tenant = std::move(tenant), name = std::move(name)](store::Tx& tx) {
        DROVER_RETURN_IF_ERROR(events::DeleteSpecRow(tx, kAlertTable, tenant, name));
        // (Notifications already queued are still delivered: they tell of what happened.)
        for (const char* table : {"alert_states", "alert_history", "alert_silences"}) {
          DROVER_RETURN_IF_ERROR(
              tx.Exec(fmt::format("DELETE FROM {} WHERE tenant = ? AND rule = ?", table),
                      {tenant, name})
                  .status());
        }
        return Status::Ok();
      },
      std::move(done));
}

Status SeedDefaultRules(store::Tx& tx) {
  std::set<std::string> tenants = {"default"};
  DROVER_RETURN_IF_ERROR(tx.Query("SELECT DISTINCT tenant FROM api_keys", {},
                                  [&](const store::Row& r) { tenants.insert(r.String(0)); }));
  DROVER_RETURN_IF_ERROR(tx.Query("SELECT tenant FROM alert_defaults", {},
                                  [&](const store::Row& r) { tenants.erase(r.String(0)); }));
  if (tenants.empty()) return Status::Ok();
  auto now = tx.NowMillis();
  if (!now.ok()) return now.status();
  for (const auto& tenant : tenants) {
    for (const auto& d : DefaultRules()) {
      auto taken = tx.QueryInt("SELECT COUNT(*) FROM alerts WHERE tenant = ? AND name = ?",
                               {tenant, std::string(d.name)});
      if (!taken.ok()) return taken.status();
      if (*taken > 0) continue;
      events::SpecRow row{tenant, std::string(d.name), std::string(d.spec_json), 0, 0, 0};
      Written written{};
      DROVER_RETURN_IF_ERROR(events::PutSpecRow(tx, kAlertTable, row, &written));
    }
    DROVER_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO alert_defaults (tenant, seeded_at) VALUES (?, ?)", {tenant, *now})
            .status());
  }
  return Status::Ok();
}

}  // namespace drover::alerts
