#pragma once
// One SQLite connection with a prepared-statement cache, and the Tx that runs on it.
// Not thread-safe: one thread at a time.
#include <sqlite3.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace drover::store::sqlite {

class Connection {
 public:
  ~Connection();
  // Opens `path`; `synchronous` is "FULL" or "NORMAL". SQL on it can call drover_now_ms():
  // `clock` in Unix milliseconds (the database's clock, as on PostgreSQL).
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, const char* synchronous,
                                                  const Clock& clock);

  // Runs SQL text that may hold several statements and no parameters.
  Status ExecScript(const char* sql);
  // A cached prepared statement, reset and with bindings cleared.
  Result<sqlite3_stmt*> Prepare(std::string_view sql);
  Status Error(std::string_view what) const;
  sqlite3* db() { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  // Heterogeneous lookup: finding a cached statement allocates nothing.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, Hash, std::equal_to<>> cache_;
};

class SqliteTx final : public Tx {
 public:
  SqliteTx(Connection& conn, const Clock& clock) : conn_(conn), clock_(clock) {}
  Result<int64_t> Exec(std::string_view sql, std::initializer_list<Param> params = {}) override;
  Status Query(std::string_view sql, std::initializer_list<Param> params,
               FunctionRef<void(const Row&)> on_row) override;
  Result<int64_t> NextIndex() override;
  Status Notify(std::string_view topic) override;
  Result<int64_t> NowMillis() override;
  // Many rows a statement (up to 64).
  Status InsertChangeRows(const std::vector<ChangeRow>& rows) override;
  // The largest index allocated through this Tx (0 when none).
  int64_t max_index() const { return max_index_; }
  // Topics named by Notify since the last reset.
  std::vector<std::string>& topics() { return topics_; }
  void reset() {
    max_index_ = 0;
    topics_.clear();
  }
  // Makes NextIndex available, allocating from *next (owned by the single writer).
  void set_writable(bool w, int64_t* next) {
    writable_ = w;
    next_index_ = next;
  }

 private:
  Result<sqlite3_stmt*> Bind(std::string_view sql, std::initializer_list<Param> params);
  Connection& conn_;
  const Clock& clock_;
  int64_t max_index_ = 0;
  std::vector<std::string> topics_;
  bool writable_ = false;
  int64_t* next_index_ = nullptr;
};

}  // namespace drover::store::sqlite
