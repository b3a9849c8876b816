#pragma once
// The SQLite backend: one database file in WAL mode, one writer thread that group-commits every
// queued write into one transaction, and a pool of read connections used on the callers'
// threads (WAL readers never wait for the writer). A lock file next to the database keeps a
// second process from opening it: SQLite is the single-server backend.
#include <memory>
#include <string>

#include "store/store.h"

namespace drover::store {

// Opens (creating if needed) the database at `path` and migrates it.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                               const StoreOptions& options);

}  // namespace drover::store
