#include "store/store.h"

#include <future>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

namespace drover::store {

Result<int64_t> Tx::QueryInt(std::string_view sql, std::initializer_list<Param> params) {
  std::optional<int64_t> v;
  DROVER_RETURN_IF_ERROR(Query(sql, params, [&](const Row& r) {
    if (!v) v = r.IsNull(0) ? 0 : r.Int(0);
  }));
  if (!v) return Status::NotFound("no row");
  return *v;
}

Status Tx::Defer(std::string_view sql, std::initializer_list<Param> params, DeferredFn done) {
  bool called = false;
  DROVER_RETURN_IF_ERROR(Query(sql, params, [&](const Row& r) {
    if (called) return;
    called = true;
    if (done) done(&r);
  }));
  if (!called && done) done(nullptr);
  return Status::Ok();
}

Status Tx::FlushChangeRows() {
  if (change_rows_.empty()) return Status::Ok();
  Status s = InsertChangeRows(change_rows_);
  change_rows_.clear();
  return s;
}

Status Tx::InsertChangeRows(const std::vector<ChangeRow>& rows) {
  int64_t now = 0;
  for (const auto& r : rows) {
    if (r.at == 0 && now == 0) {
      auto t = NowMillis();
      if (!t.ok()) return t.status();
      now = *t;
    }
    DROVER_RETURN_IF_ERROR(Defer(
        "INSERT INTO changes (seq, at, tenant, kind, name, op, actor, role, request_id, status,"
        " summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {r.seq, r.at ? r.at : now, r.tenant, r.kind, r.name, r.op, r.actor, r.role, r.request_id,
         r.status, r.summary},
        nullptr));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  std::string_view url = options.url;
  if (url.starts_with("sqlite://")) {
    return OpenSqliteStore(std::string(url.substr(9)), options);
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    return OpenPostgresStore(std::string(url), options);
  }
  return Status::InvalidArgument("--db must be sqlite://PATH or postgres://...; got '" +
                                 std::string(url) + "'");
}

std::string RedactUrl(std::string_view url) {
  std::string out(url);
  // URI form: scheme://user:password@host...
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    auto at = out.find('@', scheme + 3);
    auto colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // Key-value form or URI query: password=...
  for (auto p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    auto end = out.find_first_of(" &", p);
    out.replace(p + 9, (end == std::string::npos ? out.size() : end) - p - 9, "***");
  }
  return out;
}

Status WriteSync(Store& store, WriteFn fn) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  store.Write(std::move(fn), [promise](Status s) { promise->set_value(std::move(s)); });
  return future.get();
}

}  // namespace drover::store
