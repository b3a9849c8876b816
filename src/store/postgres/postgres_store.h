#pragma once
// The PostgreSQL backend: any number of drover servers share one database. Each server runs one
// writer connection that group-commits its queued writes, a pool of read connections used on
// the callers' threads, and a listener connection (LISTEN) that turns other servers' commits
// into Change events and keeps LastIndex current. A lost connection is re-opened with backoff;
// meanwhile writes and reads fail with Unavailable (503) and nothing acknowledged is lost.
#include <memory>
#include <string>

#include "store/store.h"

namespace drover::store {

// Connects to `url`, applies pending migrations under an advisory lock (several servers
// starting at once migrate exactly once) and starts the writer and listener.
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                 const StoreOptions& options);

}  // namespace drover::store
