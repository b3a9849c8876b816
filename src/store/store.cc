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

Status WriteSync(Store& store, WriteFn fn) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  store.Write(std::move(fn), [promise](Status s) { promise->set_value(std::move(s)); });
  return future.get();
}

}  // namespace drover::store
