#pragma once
// An environment's own history (`drover env events`): every transition of it and its instances,
// written in the same transaction as the change (each is also a change record, docs/events.md).
#include <string>

#include "common/status.h"
#include "env/records.h"
#include "store/lease.h"
#include "store/store.h"

namespace drover::env {

class EventLog {
 public:
  explicit EventLog(store::Store& store) : store_(store) {}
  // Oldest first; cursor = the last seq seen.
  Result<Page<Event>> Events(const std::string& tenant, const std::string& env,
                             const std::string& cursor, int limit);
  // An event of the environment (the controller explaining what it did or could not do), fenced
  // by the environment's lease (null: unfenced, for tests).
  Status RecordEvent(const Environment& env, const std::string& kind, const std::string& reason,
                     const store::Lease* lease);

 private:
  store::Store& store_;
};

}  // namespace drover::env
