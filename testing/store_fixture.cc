#include "testing/store_fixture.h"

#include "testing/pg_cluster.h"

namespace drover::testing {

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgres";
}

std::string NewStoreUrl(Backend backend, const TempDir& dir, const std::string& name) {
  if (backend == Backend::kSqlite) return "sqlite://" + dir.File(name);
  return PgCluster::Shared().NewDatabase();
}

std::unique_ptr<store::Store> OpenStoreAt(const std::string& url, store::StoreOptions options) {
  options.url = url;
  auto s = store::OpenStore(options);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

std::unique_ptr<store::Store> OpenTestStore(const TempDir& dir, const std::string& name,
                                            store::StoreOptions options) {
  return OpenStoreAt("sqlite://" + dir.File(name), std::move(options));
}

std::vector<std::string> BackendTest::DbArgs(std::vector<std::string> more) {
  if (GetParam() == Backend::kPostgres) {
    if (pg_url_.empty()) pg_url_ = PgCluster::Shared().NewDatabase();
    more.insert(more.begin(), {"--db", pg_url_});
  }
  return more;
}

}  // namespace drover::testing
