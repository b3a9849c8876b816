#pragma once
// A real SQLite store in a temp dir for unit tests.
#include <memory>
#include <string>

#include "store/store.h"
#include "testing/temp_dir.h"

namespace drover::testing {

// Opens sqlite://DIR/NAME (migrated); fails the test and returns null on error.
std::unique_ptr<store::Store> OpenTestStore(const TempDir& dir, const std::string& name = "t.db",
                                            store::StoreOptions options = {});

}  // namespace drover::testing
