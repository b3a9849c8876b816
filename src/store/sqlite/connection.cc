#include "store/sqlite/connection.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "store/group_commit.h"

namespace drover::store::sqlite {
namespace {

class StmtRow final : public Row {
 public:
  explicit StmtRow(sqlite3_stmt* s) : s_(s) {}
  bool IsNull(int col) const override { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  int64_t Int(int col) const override { return sqlite3_column_int64(s_, col); }
  std::string_view Text(int col) const override {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    if (!p) return {};
    return {p, static_cast<size_t>(sqlite3_column_bytes(s_, col))};
  }

 private:
  sqlite3_stmt* s_;
};

// Resets a statement when the scope ends, so a cached statement never holds a read snapshot.
struct ResetOnExit {
  sqlite3_stmt* s;
  ~ResetOnExit() { sqlite3_reset(s); }
};

}  // namespace

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path,
                                                     const char* synchronous, const Clock& clock) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Status::Unavailable(fmt::format("cannot open SQLite database {}", path)).WithDetail(msg);
  }
  std::unique_ptr<Connection> conn(new Connection(db));
  sqlite3_busy_timeout(db, 5000);
  // drover_now_ms(): the same SQL reads the database's clock on every backend.
  sqlite3_create_function_v2(
      db, "drover_now_ms", 0, SQLITE_UTF8, const_cast<Clock*>(&clock),
      [](sqlite3_context* ctx, int, sqlite3_value**) {
        auto* c = static_cast<const Clock*>(sqlite3_user_data(ctx));
        sqlite3_result_int64(ctx, ToUnixMillis(c->Now()));
      },
      nullptr, nullptr, nullptr);
  sqlite3_extended_result_codes(db, 1);
  std::string pragmas = fmt::format(
      "PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA foreign_keys=ON;"
      "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16000;",
      synchronous);
  DROVER_RETURN_IF_ERROR(conn->ExecScript(pragmas.c_str()));
  return conn;
}

Status Connection::ExecScript(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::Unavailable("storage error").WithDetail(fmt::format("SQLite: {}", msg));
  }
  return Status::Ok();
}

Result<sqlite3_stmt*> Connection::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    sqlite3_reset(it->second);
    sqlite3_clear_bindings(it->second);
    return it->second;
  }
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    return Status::Internal("database error")
        .WithDetail(fmt::format("SQLite prepare failed: {} in: {}", sqlite3_errmsg(db_), sql));
  }
  cache_.emplace(std::string(sql), stmt);
  return stmt;
}

Status Connection::Error(std::string_view what) const {
  int code = sqlite3_extended_errcode(db_);
  // SQLite's own text goes to the log only (Status::detail); clients get a generic reason.
  std::string msg = fmt::format("SQLite {}: {}", what, sqlite3_errmsg(db_));
  if ((code & 0xff) == SQLITE_CONSTRAINT) {
    return Status::Conflict("the write conflicts with what is stored").WithDetail(msg);
  }
  return Status::Unavailable("storage error").WithDetail(msg);
}

Result<sqlite3_stmt*> SqliteTx::Bind(std::string_view sql, std::initializer_list<Param> params) {
  auto stmt = conn_.Prepare(sql);
  if (!stmt.ok()) return stmt;
  int i = 1;
  for (const auto& p : params) {
    sqlite3_stmt* s = *stmt;
    if (std::holds_alternative<std::nullptr_t>(p)) {
      sqlite3_bind_null(s, i);
    } else if (auto* n = std::get_if<int64_t>(&p)) {
      sqlite3_bind_int64(s, i, *n);
    } else {
      auto sv = std::get<std::string_view>(p);
      sqlite3_bind_text(s, i, sv.data(), static_cast<int>(sv.size()), SQLITE_STATIC);
    }
    ++i;
  }
  return stmt;
}

Result<int64_t> SqliteTx::Exec(std::string_view sql, std::initializer_list<Param> params) {
  auto stmt = Bind(sql, params);
  if (!stmt.ok()) return stmt.status();
  ResetOnExit reset{*stmt};
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return conn_.Error("exec");
  return static_cast<int64_t>(sqlite3_changes64(conn_.db()));
}

Status SqliteTx::Query(std::string_view sql, std::initializer_list<Param> params,
                       FunctionRef<void(const Row&)> on_row) {
  auto stmt = Bind(sql, params);
  if (!stmt.ok()) return stmt.status();
  ResetOnExit reset{*stmt};
  StmtRow row(*stmt);
  int rc;
  while ((rc = sqlite3_step(*stmt)) == SQLITE_ROW) on_row(row);
  if (rc != SQLITE_DONE) return conn_.Error("query");
  return Status::Ok();
}

Status SqliteTx::InsertChangeRows(const std::vector<ChangeRow>& rows) {
  constexpr size_t kChunk = 64;  // 704 parameters a statement
  // The statement text for n rows, built once per size (the connection caches the statement).
  thread_local std::array<std::string, kChunk + 1> texts;
  for (size_t at = 0; at < rows.size(); at += kChunk) {
    size_t n = std::min(kChunk, rows.size() - at);
    std::string& sql = texts[n];
    if (sql.empty()) {
      sql =
          "INSERT INTO changes (seq, at, tenant, kind, name, op, actor, role, request_id, status,"
          " summary) VALUES ";
      for (size_t i = 0; i < n; ++i)
        sql += i ? ",(?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?)";
    }
    auto stmt = conn_.Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    sqlite3_stmt* st = *stmt;
    ResetOnExit reset{st};
    int col = 1;
    auto text = [&](const std::string& v) {
      sqlite3_bind_text(st, col++, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    };
    auto now = NowMillis();
    for (size_t i = at; i < at + n; ++i) {
      const ChangeRow& r = rows[i];
      sqlite3_bind_int64(st, col++, r.seq);
      sqlite3_bind_int64(st, col++, r.at ? r.at : *now);
      text(r.tenant);
      text(r.kind);
      text(r.name);
      text(r.op);
      text(r.actor);
      text(r.role);
      text(r.request_id);
      sqlite3_bind_int64(st, col++, r.status);
      text(r.summary);
    }
    if (sqlite3_step(st) != SQLITE_DONE) return conn_.Error("insert change records");
  }
  return Status::Ok();
}

Result<int64_t> SqliteTx::NextIndex() {
  if (!writable_ || !next_index_) return Status::Internal("NextIndex outside a write");
  max_index_ = ++*next_index_;
  write_index_ = max_index_;
  return max_index_;
}

Status SqliteTx::Notify(std::string_view topic) { return AddTopic(writable_, topics_, topic); }

// One process owns a SQLite database: its clock is the database's clock.
Result<int64_t> SqliteTx::NowMillis() { return ToUnixMillis(clock_.Now()); }

}  // namespace drover::store::sqlite
