#include "store/group_commit.h"

#include <exception>

namespace drover::store {
namespace {

Status RunWrite(const WriteFn& fn, Tx& tx) {
  try {
    return fn(tx);
  } catch (const std::exception& e) {  // a bug in a write function must not kill the writer
    return Status::Internal(e.what());
  }
}

// One attempt. Without savepoints, the first failing write rolls the whole attempt back and
// sets *failed (unless it is the only write: then its error is final).
Status Attempt(Tx& tx, std::vector<PendingWrite>& batch, std::vector<Status>& results,
               const BatchSteps& steps, bool savepoints, bool* failed) {
  auto run = [&tx](std::string_view sql) { return tx.Exec(sql).status(); };
  results.assign(batch.size(), Status::Ok());
  steps.reset();
  *failed = false;
  Status s = steps.begin();
  if (!s.ok()) return s;
  for (size_t i = 0; i < batch.size() && s.ok(); ++i) {
    if (savepoints) s = run("SAVEPOINT w");
    if (!s.ok()) break;
    results[i] = RunWrite(batch[i].fn, tx);
    if (!results[i].ok()) {
      if (!savepoints && batch.size() > 1) {
        *failed = true;
        (void)run("ROLLBACK");
        return Status::Ok();
      }
      s = run(savepoints ? "ROLLBACK TO w" : "ROLLBACK");
      if (!savepoints) return s;  // the only write failed: nothing to commit
    }
    if (savepoints && s.ok()) s = run("RELEASE w");
  }
  if (s.ok()) s = steps.commit();
  if (!s.ok()) (void)run("ROLLBACK");
  return s;
}

}  // namespace

Status RunBatch(Tx& tx, std::vector<PendingWrite>& batch, std::vector<Status>& results,
                const BatchSteps& steps) {
  bool failed = false;
  Status s = Attempt(tx, batch, results, steps, /*savepoints=*/false, &failed);
  if (s.ok() && failed) s = Attempt(tx, batch, results, steps, /*savepoints=*/true, &failed);
  return s;
}

}  // namespace drover::store
