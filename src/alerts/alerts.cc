#include "alerts/alerts.h"

#include <memory>

namespace drover::alerts {
namespace {

constexpr events::SpecTable kTable{"alerts", "alert", "alerts", /*global_names=*/false, ""};

}  // namespace

void AlertService::Put(std::string tenant, std::string name, std::string spec_json,
                       std::function<void(Result<std::pair<AlertRule, Written>>)> done) {
  auto out = std::make_shared<std::pair<AlertRule, Written>>();
  out->first.tenant = std::move(tenant);
  out->first.name = std::move(name);
  out->first.spec_json = std::move(spec_json);
  store_.Write(
      [out](store::Tx& tx) { return events::PutSpecRow(tx, kTable, out->first, &out->second); },
      [out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*out));
      });
}

Result<AlertRule> AlertService::Get(const std::string& tenant, const std::string& name) {
  return events::GetSpecRow(store_, kTable, tenant, name);
}

Result<Page<AlertRule>> AlertService::List(const std::string& tenant, const std::string& cursor,
                                           int limit) {
  return events::ListSpecRows(store_, kTable, tenant, cursor, limit);
}

void AlertService::Delete(std::string tenant, std::string name, std::function<void(Status)> done) {
  store_.Write([tenant = std::move(tenant), name = std::move(name)](
                   store::Tx& tx) { return events::DeleteSpecRow(tx, kTable, tenant, name); },
               std::move(done));
}

}  // namespace drover::alerts
