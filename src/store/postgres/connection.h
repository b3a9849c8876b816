#pragma once
// One libpq connection with a prepared-statement cache, and the Tx that runs on it.
// Not thread-safe: one thread at a time.
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/function_ref.h"
#include "store/store.h"

namespace drover::store::postgres {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// `sql` with each `?` outside quotes turned into PostgreSQL's numbered parameter, in order:
// the first is `$1`, the second `$2`, the third `$3`.
std::string ToPositional(std::string_view sql);

class Connection {
 public:
  ~Connection();
  // Connects to `url` (a libpq URI or key=value string) with drover's defaults for connect
  // timeout and TCP keepalives; the URL's own settings win.
  static Result<std::unique_ptr<Connection>> Open(const std::string& url);

  // Runs a statement (prepared once per connection and cached) with `params`: integers as
  // text, strings as raw bytes (exact length; the server checks the encoding).
  Result<PgResult> Run(std::string_view sql, std::initializer_list<Param> params);

  // A statement with copied parameters, for pipelining.
  struct Queued {
    std::string sql;
    std::vector<std::optional<std::string>> values;  // null = SQL NULL
    std::vector<int> formats;                        // 0 text (integers), 1 binary (strings)
  };
  static Queued Copy(std::string_view sql, std::initializer_list<Param> params);
  // Sends every statement in pipeline mode (in chunks, one round trip each) and calls
  // `on_result(i, result)` for each in order; a statement after a failed one gets
  // PGRES_PIPELINE_ABORTED. Returns the connection's status.
  Status Pipeline(const std::vector<Queued>& statements,
                  FunctionRef<void(size_t, const PGresult*)> on_result);
  // The error a failed result stands for (SQLSTATE → Status code); remembers the SQLSTATE.
  Status Error(const PGresult* r, std::string_view what);
  // The SQLSTATE of the last error ("" if none had one).
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  // Runs SQL text without parameters (may hold several statements: one round trip).
  Status ExecSimple(const char* sql);
  // Like ExecSimple; returns the last statement's result.
  Result<PgResult> ExecSimpleResult(const std::string& sql);
  // `s` as a quoted SQL string literal.
  std::string Literal(std::string_view s);
  // True once the connection is lost: the owner replaces it.
  bool broken() const { return poisoned_ || PQstatus(conn_) != CONNECTION_OK; }
  PGconn* raw() { return conn_; }
  // Every statement of Run, ExecSimple and ExecSimpleResult must be answered within `d` (0:
  // no limit); past it the connection is given up (broken) and the call is Unavailable. For
  // readers: a stalled or stopped database costs a request this long, not forever.
  void set_deadline(std::chrono::milliseconds d) { deadline_ = d; }

 private:
  explicit Connection(PGconn* c) : conn_(c) {}
  // The cached prepared statement's name, preparing it first if needed.
  Result<const std::string*> Prepared(std::string_view sql);
  PGconn* conn_;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> cache_;  // SQL → name
  std::string last_sqlstate_;
  bool poisoned_ = false;  // a failed pipeline left it unusable
  std::chrono::milliseconds deadline_{0};
  // After a PQsend* call: the answer's last result, waiting at most deadline_.
  Result<PgResult> Await(std::string_view what);
  // Waits until PQgetResult will not block, or `deadline` passes (then the connection is given
  // up: Unavailable).
  Status WaitForResult(std::string_view what, std::chrono::steady_clock::time_point deadline);
};

class PgTx final : public Tx {
 public:
  explicit PgTx(Connection& conn, bool writable = false) : conn_(conn), writable_(writable) {}
  Result<int64_t> Exec(std::string_view sql, std::initializer_list<Param> params = {}) override;
  Status Query(std::string_view sql, std::initializer_list<Param> params,
               FunctionRef<void(const Row&)> on_row) override;
  // The first call in a transaction locks the index counter row until COMMIT: servers sharing
  // the database commit index-allocating transactions one after another, so indexes become
  // visible in increasing order everywhere.
  Result<int64_t> NextIndex() override;
  Status Notify(std::string_view topic) override;
  Result<int64_t> NowMillis() override;
  // One pipelined statement a row, the database's clock taken in the statement itself.
  Status InsertChangeRows(const std::vector<ChangeRow>& rows) override;
  // While pipelining, deferred statements are queued and sent by Flush; otherwise they run at
  // once (the default).
  Status Defer(std::string_view sql, std::initializer_list<Param> params, DeferredFn done) override;
  void set_pipelining(bool on) { pipelining_ = on; }
  void set_current_write(size_t i) { current_write_ = i; }
  // Forgets queued statements (the transaction is being rolled back).
  void DropQueued() {
    queued_.clear();
    deferred_.clear();
  }
  // Sends the queued statements and sets the results of the writes whose statements failed.
  // With a `tail` (statements ending in COMMIT), sends it in the same pipeline: it runs only
  // if every queued statement succeeded, and *committed says whether it committed. Does
  // nothing (not committing) when nothing is queued. Returns the connection's status.
  Status Flush(std::vector<Status>& results, std::vector<Connection::Queued>* tail,
               bool* committed);

  // Opens a write transaction and locks the index counter in the same round trip (a write
  // batch almost always allocates indexes).
  Status BeginLocked();
  // Opens a write transaction without a round trip: BEGIN and the counter's lock are queued
  // ahead of the deferred statements, and indexes are allocated from `base`, the counter's
  // value as this server last saw it. The queued lock checks that the counter still holds
  // `base`; if another server moved it, the check aborts the transaction and mispredicted()
  // says so: the batch must run again with BeginLocked.
  void BeginPredicted(int64_t base);
  bool mispredicted() const { return mispredicted_; }
  int64_t max_index() const { return max_index_; }
  std::vector<std::string>& topics() { return topics_; }
  void reset() {
    locked_ = false;
    mispredicted_ = false;
    max_index_ = 0;
    topics_.clear();
    queued_.clear();
    deferred_.clear();
    early_failures_.clear();
  }

 private:
  Connection& conn_;
  bool writable_;
  bool locked_ = false;
  bool mispredicted_ = false;
  int64_t next_ = 0;
  int64_t max_index_ = 0;
  std::vector<std::string> topics_;
  bool pipelining_ = false;
  size_t current_write_ = 0;
  struct Deferred {
    size_t write;
    DeferredFn done;
  };
  std::vector<Connection::Queued> queued_;
  std::vector<Deferred> deferred_;                         // parallel to queued_
  std::vector<std::pair<size_t, Status>> early_failures_;  // from flushes before a sync call
  Status FlushBeforeSync();
  // A statement with any number of parameters, deferred like Defer (no completion).
  Status DeferQueued(Connection::Queued q);
};

}  // namespace drover::store::postgres
