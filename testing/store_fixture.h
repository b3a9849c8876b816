#pragma once
// Real stores for tests, on either backend: a SQLite file in a temp dir, or a fresh database in
// the test PostgreSQL cluster. Suites that touch the store run on both:
//
//   class FooTest : public ::testing::TestWithParam<testing::Backend> {...};
//   DROVER_ON_ALL_BACKENDS(FooTest);   // FooTest.Bar/sqlite and FooTest.Bar/postgres
//
// CTest labels each by its backend (test names end in /sqlite or /postgres).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "store/store.h"
#include "testing/temp_dir.h"

namespace drover::testing {

enum class Backend { kSqlite, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info);

// A URL for a new, empty store: sqlite://DIR/NAME, or a new database in the shared cluster.
std::string NewStoreUrl(Backend backend, const TempDir& dir, const std::string& name = "t.db");

// Opens `url` (migrated); fails the test and returns null on error.
std::unique_ptr<store::Store> OpenStoreAt(const std::string& url, store::StoreOptions options = {});

// Opens sqlite://DIR/NAME (migrated); fails the test and returns null on error.
std::unique_ptr<store::Store> OpenTestStore(const TempDir& dir, const std::string& name = "t.db",
                                            store::StoreOptions options = {});

// Base for tests of real server processes on either backend.
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  // Server flags selecting the store, plus `more`: nothing on SQLite (the file in the data
  // dir), `--db URL` of one fresh database (the same for every call in a test) on PostgreSQL.
  std::vector<std::string> DbArgs(std::vector<std::string> more = {});

 private:
  std::string pg_url_;
};

}  // namespace drover::testing

#define DROVER_ON_ALL_BACKENDS(suite)                                                \
  INSTANTIATE_TEST_SUITE_P(, suite,                                                  \
                           ::testing::Values(::drover::testing::Backend::kSqlite,    \
                                             ::drover::testing::Backend::kPostgres), \
                           ::drover::testing::BackendName)
