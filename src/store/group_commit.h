#pragma once
// The part of group commit both backends share: running a batch of queued writes in one
// transaction, optimistically without savepoints first, and again with a savepoint per write
// when one of them fails (so the failure rolls back alone).
#include <string_view>
#include <vector>

#include "common/function_ref.h"
#include "store/store.h"

namespace drover::store {

struct PendingWrite {
  WriteFn fn;
  DoneFn done;
};

// What differs between backends around a batch.
struct BatchSteps {
  FunctionRef<Status()> begin;   // open the transaction
  FunctionRef<void()> reset;     // forget per-attempt state (allocated indexes, topics)
  FunctionRef<Status()> commit;  // persist the index, send notifications, COMMIT
  // Write i is about to run (deferred statements belong to it).
  FunctionRef<void(size_t i)> on_write;
  // Runs what the writes deferred (Tx::Defer) so far and sets the result of each write whose
  // deferred statement failed. Given `committed` (after the last write of an optimistic
  // attempt), the backend may commit in the same round trip when every statement succeeds,
  // and says so there. Returns the transaction's own status.
  FunctionRef<Status(std::vector<Status>& results, bool* committed)> flush;
};

// Runs `batch` on `tx` and commits. Per-write results go to `results` (one per write). Returns
// the transaction's own status: not OK when begin or commit failed, in which case nothing of
// the batch was committed.
Status RunBatch(Tx& tx, std::vector<PendingWrite>& batch, std::vector<Status>& results,
                const BatchSteps& steps);

}  // namespace drover::store
