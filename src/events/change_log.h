#pragma once
// The change log: one durable record per change, written in the same transaction as the change
// itself, with a sequence (the store's change index: strictly increasing in commit order, across
// every server sharing a database). It is both the live change feed (`GET /v1/events`, which
// the dashboard, workflows' event streams and alerts read) and the audit log (`GET /v1/audit`:
// every mutating API call, accepted or refused). docs/events.md.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace drover::events {

// The store topic every change record notifies: feeds wake on it.
inline constexpr const char* kTopic = "events";

// What changed, as a service describes it. `summary` is a JSON object (or empty) of a few
// fields that say what the change was — never a secret (no variable values, no keys).
struct ChangeRecord {
  std::string tenant;
  std::string kind;  // environment, instance, variable, schedule, key, ...
  std::string name;  // the resource's name (an instance or key: its id)
  std::string op;    // created, updated, deleted, scaled, joined, ...
  std::string summary;
};

// Writes `c` inside `tx` with the next change index as its sequence, the database clock as its
// time and the write's origin (store/origin.h) as its actor. Only inside Store::Write.
Status Record(store::Tx& tx, const ChangeRecord& c);

// One record as read back.
struct Entry {
  int64_t seq = 0;
  int64_t at_ms = 0;
  std::string tenant, kind, name, op, actor, role, request_id;
  int status = 0;  // 0: applied; an HTTP status for a refused API call
  std::string summary;
};

// The JSON object of an entry (`summary` inlined as an object).
std::string EntryJson(const Entry& e);

struct FeedQuery {
  std::optional<std::string> tenant;  // nullopt: every tenant (admins)
  std::vector<std::string> kinds;     // empty: all
  int64_t after = 0;
  int64_t upto = 0;  // the highest sequence known committed (Store::LastIndex())
  int limit = 100;
};

struct AuditQuery {
  std::optional<std::string> tenant;
  std::string actor, kind;
  std::optional<int64_t> since_ms, until_ms;
  int64_t before = 0;  // cursor: sequences below it (0 = from the newest)
  int limit = 100;
};

// A refused mutating API call (401/403/404/409/422), reported by the request pipeline.
struct Refusal {
  std::string tenant, kind, name, op, actor, role, request_id;
  int status = 0;
  std::string summary;
};

class ChangeLog {
 public:
  // `refusals_per_second`: refused calls recorded at most this often (a token bucket, burst of
  // twice that); beyond it they are counted in dropped_refusals() and not written, so a flood of
  // bad requests cannot become a flood of writes.
  ChangeLog(store::Store& store, double refusals_per_second = 100);

  // Applied changes after `q.after` (and at most `q.upto`), oldest first.
  Result<std::vector<Entry>> Feed(const FeedQuery& q);
  // The newest sequence records were pruned through: a feed resuming before it missed changes.
  Result<int64_t> PrunedThrough();
  // API calls, accepted or refused, newest first.
  Result<std::vector<Entry>> Audit(const AuditQuery& q);
  // Writes a refused call (its own durable write; not waited for).
  void RecordRefusal(Refusal r);
  uint64_t dropped_refusals() const { return dropped_.load(); }
  // Deletes records older than `retention`; returns how many.
  Result<int64_t> Prune(std::chrono::milliseconds retention);

 private:
  store::Store& store_;
  const double rate_;
  std::mutex mu_;
  double tokens_;  // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point refilled_;
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace drover::events
