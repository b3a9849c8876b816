#include "testing/store_fixture.h"

#include <gtest/gtest.h>

namespace drover::testing {

std::unique_ptr<store::Store> OpenTestStore(const TempDir& dir, const std::string& name,
                                            store::StoreOptions options) {
  options.url = "sqlite://" + dir.File(name);
  auto s = store::OpenStore(options);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

}  // namespace drover::testing
