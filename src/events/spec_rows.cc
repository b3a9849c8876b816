#include "events/spec_rows.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <optional>

#include "common/clock.h"
#include "common/json.h"
#include "events/change_log.h"

namespace drover::events {
namespace {

std::string Select(const SpecTable& t) {
  return fmt::format("SELECT tenant, name, spec, created_at, updated_at, modify_index FROM {}",
                     t.table);
}

SpecRow ReadRow(const store::Row& r) {
  SpecRow x;
  x.tenant = r.String(0);
  x.name = r.String(1);
  x.spec_json = r.String(2);
  x.created_at_ms = r.Int(3);
  x.updated_at_ms = r.Int(4);
  x.modify_index = r.Int(5);
  return x;
}

Status Missing(const SpecTable& t, std::string_view name) {
  return Status::NotFound(fmt::format("{} '{}' does not exist", t.kind, name));
}

}  // namespace

Status PutSpecRow(store::Tx& tx, const SpecTable& t, SpecRow& row, Written* written) {
  std::optional<SpecRow> old;
  auto read = [&](const store::Row& r) { old = ReadRow(r); };
  // With global names the name alone finds the row, whoever holds it.
  DROVER_RETURN_IF_ERROR(t.global_names ? tx.Query(Select(t) + " WHERE name = ?", {row.name}, read)
                                        : tx.Query(Select(t) + " WHERE name = ? AND tenant = ?",
                                                   {row.name, row.tenant}, read));
  if (old && old->tenant != row.tenant) {
    return Status::Conflict(
        fmt::format("{} name '{}' is taken: {}", t.kind, row.name, t.taken_because));
  }
  if (old && old->spec_json == row.spec_json) {
    row = *old;
    *written = Written::kUnchanged;
    return Status::Ok();
  }
  auto idx = tx.NextIndex();
  if (!idx.ok()) return idx.status();
  auto now = tx.NowMillis();
  if (!now.ok()) return now.status();
  row.created_at_ms = old ? old->created_at_ms : *now;
  row.updated_at_ms = *now;
  row.modify_index = *idx;
  DROVER_RETURN_IF_ERROR(
      tx.Exec(fmt::format("INSERT INTO {} (tenant, name, spec, created_at, updated_at,"
                          " modify_index) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT ({}) DO UPDATE"
                          " SET spec = excluded.spec, updated_at = excluded.updated_at,"
                          " modify_index = excluded.modify_index",
                          t.table, t.global_names ? "name" : "tenant, name"),
              {row.tenant, row.name, row.spec_json, row.created_at_ms, *now, *idx})
          .status());
  *written = old ? Written::kUpdated : Written::kCreated;
  DROVER_RETURN_IF_ERROR(tx.Notify(t.topic));
  return Record(tx, {row.tenant, std::string(t.kind), row.name, old ? "updated" : "created", ""});
}

Status DeleteSpecRow(store::Tx& tx, const SpecTable& t, const std::string& tenant,
                     const std::string& name) {
  auto n =
      tx.Exec(fmt::format("DELETE FROM {} WHERE name = ? AND tenant = ?", t.table), {name, tenant});
  if (!n.ok()) return n.status();
  if (*n == 0) return Missing(t, name);
  DROVER_RETURN_IF_ERROR(tx.NextIndex().status());
  DROVER_RETURN_IF_ERROR(tx.Notify(t.topic));
  return Record(tx, {tenant, std::string(t.kind), name, "deleted", ""});
}

Result<SpecRow> GetSpecRow(store::Store& store, const SpecTable& t, const std::string& tenant,
                           const std::string& name) {
  std::optional<SpecRow> r;
  Status s = store.Read([&](store::Tx& tx) {
    return tx.Query(Select(t) + " WHERE name = ? AND tenant = ?", {name, tenant},
                    [&](const store::Row& row) { r = ReadRow(row); });
  });
  if (!s.ok()) return s;
  if (!r) return Missing(t, name);
  return std::move(*r);
}

Result<Page<SpecRow>> ListSpecRows(store::Store& store, const SpecTable& t,
                                   const std::string& tenant, const std::string& cursor,
                                   int limit) {
  Page<SpecRow> page;
  Status s = store.Read([&](store::Tx& tx) {
    return tx.Query(Select(t) + " WHERE tenant = ? AND name > ? ORDER BY name LIMIT ?",
                    {tenant, cursor, int64_t{limit} + 1},
                    [&](const store::Row& r) { page.items.push_back(ReadRow(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const SpecRow& r) { return r.name; });
  return page;
}

Status ReadAllSpecRows(store::Tx& tx, const SpecTable& t, std::vector<SpecRow>* out) {
  return tx.Query(Select(t) + " ORDER BY name", {},
                  [&](const store::Row& r) { out->push_back(ReadRow(r)); });
}

boost::json::object SpecRowJson(const SpecRow& r) {
  return boost::json::object{{"name", r.name},
                             {"tenant", r.tenant},
                             {"spec", ParseJsonOrNull(r.spec_json)},
                             {"modify_index", r.modify_index},
                             {"created_at", JsonTime(r.created_at_ms)},
                             {"updated_at", JsonTime(r.updated_at_ms)}};
}

}  // namespace drover::events
