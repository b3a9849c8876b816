#pragma once
// The store: the one seam between drover and its database. Backend-neutral: callers speak a
// portable SQL subset (`?` placeholders, INTEGER/BIGINT/TEXT columns, ON CONFLICT upserts,
// RETURNING) through Tx, and never see a backend type. Backends: SQLite (sqlite/, one server)
// and PostgreSQL (postgres/, any number of servers on one database), both behind OpenStore().
//
// Durability contract: Write()'s `done` is called with OK only after the transaction holding the
// write has committed (fsync per the backend's settings). Concurrent writes are group-committed:
// the writer runs every queued write in one transaction and answers all of them after a single
// commit. A failing write rolls back alone: the batch is then run again with a savepoint per
// write. So a write function may run more than once before it commits: it must depend only on
// its inputs and the Tx, and leave captured results in a state its last run decides.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/function_ref.h"
#include "common/status.h"

namespace drover::store {

// A statement parameter. A string_view must stay valid until the call returns.
using Param = std::variant<std::nullptr_t, int64_t, std::string_view>;

// One result row, valid only inside the callback that receives it.
class Row {
 public:
  virtual ~Row() = default;
  virtual bool IsNull(int col) const = 0;
  virtual int64_t Int(int col) const = 0;
  virtual std::string_view Text(int col) const = 0;
  std::string String(int col) const { return std::string(Text(col)); }
};

// One row of the `changes` table (events/change_log.h writes them): collected by the write's
// Tx and inserted together when its batch commits.
struct ChangeRow {
  int64_t seq = 0;
  int64_t at = 0;  // 0: the database's clock when the rows are inserted
  std::string tenant, kind, name, op, actor, role, request_id;
  int64_t status = 0;
  std::string summary;
};

// Statements inside one transaction (Write) or on one read connection (Read).
// Not thread-safe: used only by the thread running the callback that received it.
class Tx {
 public:
  virtual ~Tx() = default;
  // Runs one statement; returns the number of rows changed.
  virtual Result<int64_t> Exec(std::string_view sql, std::initializer_list<Param> params = {}) = 0;
  // Runs one query; calls `on_row` per row.
  virtual Status Query(std::string_view sql, std::initializer_list<Param> params,
                       FunctionRef<void(const Row&)> on_row) = 0;
  // Allocates the next value of the global change index (strictly increasing, visible to readers
  // once this transaction commits). Only inside Write.
  virtual Result<int64_t> NextIndex() = 0;
  // Announces a change of `topic` (e.g. "variables", "environment/web") to every server's
  // subscribers once this transaction commits. Only inside Write; repeated topics are sent once.
  virtual Status Notify(std::string_view topic) = 0;
  // The database's clock in Unix milliseconds: one clock for every server sharing a database
  // (leases expire by it).
  virtual Result<int64_t> NowMillis() = 0;

  // A statement whose result the write does not need before its next statement. The backend
  // may send the deferred statements of a whole batch, and the COMMIT, at once (PostgreSQL: one
  // round trip, in pipeline mode). An error of the statement fails the write like an Exec
  // error; `done` receives the first result row (null when there is none) to read results
  // from, maybe only after COMMIT, so it cannot fail the write (`done` may be empty). Parameters
  // are copied. An Exec or Query later in the same Tx runs after every deferred statement before
  // it. The default runs the statement at once.
  using DeferredFn = std::function<void(const Row* first_row)>;
  virtual Status Defer(std::string_view sql, std::initializer_list<Param> params, DeferredFn done);

  // Convenience: the first column of the first row as an integer, or NotFound.
  Result<int64_t> QueryInt(std::string_view sql, std::initializer_list<Param> params = {});

  // For change records (events/change_log.h): the index the current write allocated last and
  // no record took yet, taken now (0 when there is none), so a write that allocates one index
  // and records one change shows one sequence number for both.
  int64_t TakeWriteIndex() { return std::exchange(write_index_, 0); }
  // Called by the store before each write function of a batch.
  void StartWrite() { write_index_ = 0; }

  // A row for `changes`, inserted with the rest of the batch's when it commits (one statement
  // for many rows: a change record costs far less than a statement of its own). Only in Write.
  void AddChangeRow(ChangeRow row) { change_rows_.push_back(std::move(row)); }
  // For the store's batch runner: rows so far; dropping a failed write's; inserting them all.
  size_t change_rows() const { return change_rows_.size(); }
  void TruncateChangeRows(size_t n) { change_rows_.resize(std::min(n, change_rows_.size())); }
  Status FlushChangeRows();

 protected:
  // Inserts `rows` into `changes`. The default runs one (deferred) statement per row; a
  // backend may do better.
  virtual Status InsertChangeRows(const std::vector<ChangeRow>& rows);

  int64_t write_index_ = 0;  // set by NextIndex
  std::vector<ChangeRow> change_rows_;
};

using WriteFn = std::function<Status(Tx&)>;
using DoneFn = std::function<void(Status)>;

// A committed change, as subscribers see it: the change index after it and the topics named by
// Tx::Notify. `resync` means changes may have been missed (e.g. after the database connection
// was lost): subscribers should re-read whatever they watch.
struct Change {
  int64_t index = 0;
  std::vector<std::string> topics;
  bool resync = false;
};
using ChangeFn = std::function<void(const Change&)>;

struct CommitStats {
  double seconds = 0;     // from BEGIN to COMMIT returning
  std::size_t batch = 0;  // writes in the transaction
};

struct StoreOptions {
  std::string url;  // sqlite://PATH or postgres://user@host:port/db (any libpq URI)
  bool sqlite_sync_normal =
      false;  // synchronous=NORMAL: faster, may lose the last commits on power loss
  std::size_t max_batch = 1024;   // writes per transaction
  std::size_t max_queue = 20000;  // queued writes beyond this are refused with Unavailable
  // A write the writer has not taken after this long is refused (Unavailable, not applied):
  // a stalled database answers writes after a bounded wait. 0: no limit.
  std::chrono::milliseconds write_queue_timeout{10000};
  int readers = 8;  // read connections kept open
  // PostgreSQL: a read with no answer this long is Unavailable (its connection is dropped), so
  // a stalled or stopped database costs a request this long, not forever.
  std::chrono::milliseconds read_timeout{5000};
  std::function<void(const CommitStats&)> on_commit;  // metrics hook, called on the writer thread
  // SQLite: syncs the WAL file (default fdatasync); tests inject a failing one. A failed sync
  // ends the process (exit code 74): docs/architecture.md.
  std::function<int(int fd)> sqlite_sync;
  // SQLite: the database's clock (one process owns the file); null: the system clock.
  // PostgreSQL's clock is the server's.
  const Clock* clock = nullptr;
};

class Store {
 public:
  virtual ~Store() = default;
  // "sqlite" or "postgres".
  virtual std::string_view Backend() const = 0;
  // Queues `fn` for the writer thread; `done` runs after the commit (OK or the error of `fn`), or
  // with Unavailable if the commit failed, the queue is full or the write waited in it past
  // StoreOptions::write_queue_timeout (then it never runs), on the store's completion thread
  // (or at once on the caller's thread when the write is refused). Thread-safe.
  virtual void Write(WriteFn fn, DoneFn done) = 0;
  // Runs `fn` on a read connection on the calling thread; sees every committed write. Thread-safe.
  virtual Status Read(FunctionRef<Status(Tx&)> fn) = 0;
  // The highest committed change index this process knows of: its own commits and, on
  // PostgreSQL, other servers' as their notifications arrive. Thread-safe, lock-free.
  virtual int64_t LastIndex() const = 0;
  // OK when the database answers (readyz).
  virtual Status Ping() = 0;
  // Calls `fn` for every committed change (this server's and, on PostgreSQL, every other
  // server's), in commit order, on a store thread: it must be quick and must not block.
  // Returns an id for Unsubscribe. Thread-safe.
  virtual int Subscribe(ChangeFn fn) = 0;
  virtual void Unsubscribe(int id) = 0;
  // Finishes queued writes, stops the writer and closes connections. Idempotent.
  virtual void Close() = 0;
};

// Opens the store named by options.url and applies pending migrations.
// Errors: InvalidArgument for an unknown URL scheme, Unavailable when the database cannot be
// opened or migrated.
Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

// `url` with any password replaced by "***", for logs and errors.
std::string RedactUrl(std::string_view url);

// Write() and wait for `done`. For start-up code and tests, never on an I/O thread.
Status WriteSync(Store& store, WriteFn fn);

}  // namespace drover::store
