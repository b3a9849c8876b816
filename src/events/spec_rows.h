#pragma once
// Resources kept as a spec document (gateway routes, alert rules): one row per resource,
// (tenant, name) → spec, created_at, updated_at, modify_index, written with its change record
// and a store notification. The spec is stored as given (compact JSON), checked by the
// resource's parser before it gets here.
#include <boost/json/fwd.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/page.h"
#include "common/status.h"
#include "store/store.h"

namespace drover::events {

struct SpecRow {
  std::string tenant, name;
  std::string spec_json;
  int64_t created_at_ms = 0, updated_at_ms = 0, modify_index = 0;
};

// Where and how a kind of spec resource is kept.
struct SpecTable {
  std::string_view table;  // with columns tenant, name, spec, created_at, updated_at, modify_index
  std::string_view kind;   // in change records and messages: "route", "alert"
  std::string_view topic;  // the store topic notified on every change
  // Names unique across tenants (the table's key is the name alone): another tenant's name is
  // a Conflict with `taken_because` as the reason.
  bool global_names = false;
  std::string_view taken_because;
};

// Creates or changes `row` (tenant, name, spec_json set) inside `tx`; fills in its times and
// index (or the stored row's when unchanged) and says which it was.
Status PutSpecRow(store::Tx& tx, const SpecTable& t, SpecRow& row, Written* written);
// Deletes the row inside `tx`: NotFound when there is none.
Status DeleteSpecRow(store::Tx& tx, const SpecTable& t, const std::string& tenant,
                     const std::string& name);
Result<SpecRow> GetSpecRow(store::Store& store, const SpecTable& t, const std::string& tenant,
                           const std::string& name);
Result<Page<SpecRow>> ListSpecRows(store::Store& store, const SpecTable& t,
                                   const std::string& tenant, const std::string& cursor, int limit);
// Every row of every tenant, by name (for services that keep them all in memory).
Status ReadAllSpecRows(store::Tx& tx, const SpecTable& t, std::vector<SpecRow>* out);

// {name, tenant, spec, modify_index, created_at, updated_at}: the resource as the API shows it.
boost::json::object SpecRowJson(const SpecRow& r);

}  // namespace drover::events
