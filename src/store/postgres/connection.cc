#include "store/postgres/connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "store/group_commit.h"

namespace drover::store::postgres {
namespace {

class PgRow final : public Row {
 public:
  PgRow(const PGresult* r, int row) : r_(r), row_(row) {}
  bool IsNull(int col) const override { return PQgetisnull(r_, row_, col); }
  int64_t Int(int col) const override {
    const char* p = PQgetvalue(r_, row_, col);
    int64_t v = 0;
    std::from_chars(p, p + PQgetlength(r_, row_, col), v);
    return v;
  }
  std::string_view Text(int col) const override {
    return {PQgetvalue(r_, row_, col), static_cast<size_t>(PQgetlength(r_, row_, col))};
  }

 private:
  const PGresult* r_;
  int row_;
};

constexpr size_t kMaxParams = 32;
constexpr size_t kNoWrite = static_cast<size_t>(-1);  // a queued statement of no write (BEGIN)

}  // namespace

std::string ToPositional(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;  // a doubled quote closes and reopens: same result
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?') {
      out += fmt::format("${}", ++n);
      continue;
    }
    out += c;
  }
  return out;
}

Connection::~Connection() { PQfinish(conn_); }

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& url) {
  // Earlier entries are defaults: the expanded URL (dbname) overrides them.
  const char* keys[] = {"connect_timeout",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "application_name",
                        "dbname",
                        nullptr};
  const char* values[] = {"5", "10", "5", "3", "drover", url.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!c) return Status::Unavailable("PostgreSQL: out of memory");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return Status::Unavailable("cannot connect to PostgreSQL").WithDetail(msg);
  }
  // Server notices ("relation already exists, skipping") are not errors: keep them off stderr.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(c));
}

Status Connection::Error(const PGresult* r, std::string_view what) {
  std::string msg = r ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  // PostgreSQL's own text goes to the log only (Status::detail); clients get a generic reason.
  msg = fmt::format("PostgreSQL {}: {}", what, msg);
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  std::string_view cls = state ? std::string_view(state, 2) : std::string_view();
  auto unavailable = [&] {
    return Status::Unavailable("the database is unavailable").WithDetail(msg);
  };
  if (broken() || !state) return unavailable();
  if (cls == "23") {  // integrity constraint violation
    return Status::Conflict("the write conflicts with what is stored").WithDetail(msg);
  }
  if (cls == "22") {  // data exception: a value the database cannot hold
    return Status::InvalidArgument("the database refused a value").WithDetail(msg);
  }
  // connection, serialization/deadlock, resources, operator intervention, system, lock wait
  for (auto c : {"08", "40", "53", "55", "57", "58"}) {
    if (cls == c) return unavailable();
  }
  return Status::Internal("database error").WithDetail(msg);  // our SQL is wrong: a bug
}

Status Connection::WaitForResult(std::string_view what,
                                 std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    int pending = PQflush(conn_);  // 1: more to send
    if (pending < 0) return Error(nullptr, what);
    if (pending == 0 && !PQisBusy(conn_)) return Status::Ok();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      poisoned_ = true;  // an answer may still come: the connection cannot be reused
      return Status::Unavailable("the database is unavailable")
          .WithDetail(
              fmt::format("PostgreSQL {}: no answer within {} ms", what, deadline_.count()));
    }
    pollfd p{PQsocket(conn_), static_cast<short>(POLLIN | (pending ? POLLOUT : 0)), 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) return Error(nullptr, what);
    if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn_)) {
      return Error(nullptr, what);
    }
  }
}

Result<PgResult> Connection::Await(std::string_view what) {
  DROVER_RETURN_IF_ERROR(WaitForResult(what, std::chrono::steady_clock::now() + deadline_));
  PgResult last;
  while (PGresult* r = PQgetResult(conn_)) last.reset(r);
  return last;
}

Status Connection::ExecSimple(const char* sql) {
  if (deadline_.count() > 0) return ExecSimpleResult(sql).status();
  PgResult r(PQexec(conn_, sql));
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error(r.get(), "exec");
  return Status::Ok();
}

Result<PgResult> Connection::ExecSimpleResult(const std::string& sql) {
  PgResult r;
  if (deadline_.count() > 0) {
    if (!PQsendQuery(conn_, sql.c_str())) return Error(nullptr, "exec");
    auto got = Await("exec");
    if (!got.ok()) return got.status();
    r = std::move(*got);
  } else {
    r.reset(PQexec(conn_, sql.c_str()));
  }
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error(r.get(), "exec");
  return r;
}

std::string Connection::Literal(std::string_view s) {
  char* q = PQescapeLiteral(conn_, s.data(), s.size());
  if (!q) return "''";
  std::string out(q);
  PQfreemem(q);
  return out;
}

Result<const std::string*> Connection::Prepared(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    std::string name = fmt::format("s{}", cache_.size() + 1);
    PgResult r;
    if (deadline_.count() > 0) {
      if (!PQsendPrepare(conn_, name.c_str(), ToPositional(sql).c_str(), 0, nullptr)) {
        return Error(nullptr, "prepare");
      }
      auto got = Await("prepare");
      if (!got.ok()) return got.status();
      r = std::move(*got);
    } else {
      r.reset(PQprepare(conn_, name.c_str(), ToPositional(sql).c_str(), 0, nullptr));
    }
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      Status s = Error(r.get(), "prepare");
      if (s.code() == Status::Code::kInternal) {
        return Status::Internal("database error")
            .WithDetail(fmt::format("{} in: {}", s.detail(), sql));
      }
      return s;
    }
    it = cache_.emplace(std::string(sql), std::move(name)).first;
  }
  return &it->second;
}

Result<PgResult> Connection::Run(std::string_view sql, std::initializer_list<Param> params) {
  if (params.size() > kMaxParams) return Status::Internal("too many statement parameters");
  auto name = Prepared(sql);
  if (!name.ok()) return name.status();
  const char* values[kMaxParams];
  int lengths[kMaxParams];
  int formats[kMaxParams];
  char ints[kMaxParams][24];
  size_t i = 0;
  for (const auto& p : params) {
    lengths[i] = 0;
    formats[i] = 0;
    if (std::holds_alternative<std::nullptr_t>(p)) {
      values[i] = nullptr;
    } else if (auto* n = std::get_if<int64_t>(&p)) {
      auto [end, ec] = std::to_chars(ints[i], ints[i] + sizeof(ints[i]) - 1, *n);
      *end = '\0';
      values[i] = ints[i];
    } else {
      auto sv = std::get<std::string_view>(p);
      values[i] = sv.data() ? sv.data() : "";
      lengths[i] = static_cast<int>(sv.size());
      formats[i] = 1;  // binary text: exact bytes, no NUL terminator needed
    }
    ++i;
  }
  PgResult r;
  if (deadline_.count() > 0) {
    if (!PQsendQueryPrepared(conn_, (*name)->c_str(), static_cast<int>(i), values, lengths, formats,
                             0)) {
      return Error(nullptr, "statement");
    }
    auto got = Await("statement");
    if (!got.ok()) return got.status();
    r = std::move(*got);
  } else {
    r.reset(
        PQexecPrepared(conn_, (*name)->c_str(), static_cast<int>(i), values, lengths, formats, 0));
  }
  auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error(r.get(), "statement");
  return r;
}

Connection::Queued Connection::Copy(std::string_view sql, std::initializer_list<Param> params) {
  Queued q;
  q.sql = std::string(sql);
  for (const auto& p : params) {
    if (std::holds_alternative<std::nullptr_t>(p)) {
      q.values.emplace_back(std::nullopt);
      q.formats.push_back(0);
    } else if (auto* n = std::get_if<int64_t>(&p)) {
      q.values.emplace_back(std::to_string(*n));
      q.formats.push_back(0);
    } else {
      q.values.emplace_back(std::string(std::get<std::string_view>(p)));
      q.formats.push_back(1);
    }
  }
  return q;
}

Status Connection::Pipeline(const std::vector<Queued>& statements,
                            FunctionRef<void(size_t, const PGresult*)> on_result) {
  // Prepared statements first (synchronously, once per connection).
  std::vector<const std::string*> names;
  names.reserve(statements.size());
  for (const auto& q : statements) {
    auto n = Prepared(q.sql);
    if (!n.ok()) return n.status();
    names.push_back(*n);
  }
  if (!PQenterPipelineMode(conn_)) return Error(nullptr, "pipeline");
  // Chunks keep unread results well inside the socket buffers (no send/receive deadlock).
  constexpr size_t kChunk = 256;
  Status st;
  for (size_t start = 0; start < statements.size() && st.ok(); start += kChunk) {
    size_t end = std::min(statements.size(), start + kChunk);
    for (size_t i = start; i < end; ++i) {
      const auto& q = statements[i];
      std::vector<const char*> values;
      std::vector<int> lengths;
      for (const auto& v : q.values) {
        values.push_back(v ? v->c_str() : nullptr);
        lengths.push_back(v ? static_cast<int>(v->size()) : 0);
      }
      if (!PQsendQueryPrepared(conn_, names[i]->c_str(), static_cast<int>(values.size()),
                               values.data(), lengths.data(), q.formats.data(), 0)) {
        st = Error(nullptr, "pipeline send");
        break;
      }
    }
    if (st.ok() && !PQpipelineSync(conn_)) st = Error(nullptr, "pipeline sync");
    if (!st.ok()) break;
    auto deadline = std::chrono::steady_clock::now() + deadline_;
    for (size_t i = start; i < end; ++i) {
      if (deadline_.count() > 0 && !(st = WaitForResult("pipeline", deadline)).ok()) break;
      PgResult r(PQgetResult(conn_));
      if (!r) {
        st = Error(nullptr, "pipeline result");
        break;
      }
      on_result(i, r.get());
      while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);  // to the end of this query
    }
    if (!st.ok()) break;
    if (deadline_.count() > 0 && !(st = WaitForResult("pipeline", deadline)).ok()) break;
    PgResult sync(PQgetResult(conn_));
    if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
      st = Error(sync.get(), "pipeline sync");
    }
  }
  if (!PQexitPipelineMode(conn_)) {
    // Results left unread: the connection's protocol state is unknown, so it is not reused.
    poisoned_ = true;
    if (st.ok()) st = Status::Unavailable("PostgreSQL pipeline left in an unknown state");
  }
  return st;
}

Status PgTx::Defer(std::string_view sql, std::initializer_list<Param> params, DeferredFn done) {
  if (!pipelining_) return Tx::Defer(sql, params, std::move(done));
  queued_.push_back(Connection::Copy(sql, params));
  deferred_.push_back({current_write_, std::move(done)});
  return Status::Ok();
}

// A synchronous statement runs after the deferred ones before it: send those first. Their
// failures are kept for Flush.
Status PgTx::FlushBeforeSync() {
  if (queued_.empty()) return Status::Ok();
  std::vector<Status> results(current_write_ + 1);
  Status s = Flush(results, nullptr, nullptr);
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) early_failures_.emplace_back(i, std::move(results[i]));
  }
  return s;
}

Status PgTx::Flush(std::vector<Status>& results, std::vector<Connection::Queued>* tail,
                   bool* committed) {
  for (auto& [write, status] : early_failures_) {
    if (write < results.size() && results[write].ok()) results[write] = std::move(status);
  }
  early_failures_.clear();
  if (queued_.empty()) return Status::Ok();  // nothing deferred: the caller commits as usual
  std::vector<Connection::Queued> queued;
  std::vector<Deferred> deferred;
  queued.swap(queued_);
  deferred.swap(deferred_);
  size_t n = queued.size();
  if (tail) {
    for (auto& q : *tail) queued.push_back(std::move(q));
  }
  Status tail_status;
  Status s = conn_.Pipeline(queued, [&](size_t i, const PGresult* r) {
    auto st = PQresultStatus(r);
    bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (i >= n || deferred[i].write == kNoWrite) {  // BEGIN, or the commit tail
      if (st != PGRES_PIPELINE_ABORTED && !ok && tail_status.ok()) {
        tail_status = conn_.Error(r, "commit");
        if (conn_.last_sqlstate() == "22012") mispredicted_ = true;  // the index guard
      }
      if (i + 1 == queued.size() && ok &&
          std::string_view(PQcmdStatus(const_cast<PGresult*>(r))) == "COMMIT") {
        *committed = true;
      }
      return;
    }
    Status& result = results[deferred[i].write];
    if (st == PGRES_PIPELINE_ABORTED || !result.ok()) return;  // an earlier failure stands
    if (!ok) {
      result = conn_.Error(r, "statement");
      return;
    }
    std::optional<PgRow> row;
    if (PQntuples(r) > 0) row.emplace(r, 0);
    if (deferred[i].done) deferred[i].done(row ? &*row : nullptr);
  });
  return s.ok() ? tail_status : s;
}

Result<int64_t> PgTx::Exec(std::string_view sql, std::initializer_list<Param> params) {
  DROVER_RETURN_IF_ERROR(FlushBeforeSync());
  auto r = conn_.Run(sql, params);
  if (!r.ok()) return r.status();
  const char* n = PQcmdTuples(r->get());
  int64_t changed = 0;
  std::from_chars(n, n + std::strlen(n), changed);
  return changed;
}

Status PgTx::Query(std::string_view sql, std::initializer_list<Param> params,
                   FunctionRef<void(const Row&)> on_row) {
  DROVER_RETURN_IF_ERROR(FlushBeforeSync());
  auto r = conn_.Run(sql, params);
  if (!r.ok()) return r.status();
  int rows = PQntuples(r->get());
  for (int i = 0; i < rows; ++i) on_row(PgRow(r->get(), i));
  return Status::Ok();
}

Result<int64_t> PgTx::NextIndex() {
  if (!writable_) return Status::Internal("NextIndex outside a write");
  if (!locked_) {
    auto v = QueryInt("SELECT value FROM counters WHERE name = 'index' FOR UPDATE");
    if (!v.ok()) return v.status();
    next_ = *v;
    locked_ = true;
  }
  max_index_ = ++next_;
  write_index_ = max_index_;
  return max_index_;
}

void PgTx::BeginPredicted(int64_t base) {
  // Locks the counter row first, as BeginLocked does, so every transaction takes the counter
  // before any row: no lock-order deadlock between servers in either mode. A wrong guess
  // divides by zero, which aborts the rest of the pipeline, COMMIT included.
  queued_.push_back(Connection::Copy("BEGIN", {}));
  deferred_.push_back({kNoWrite, [](const Row*) {}});
  queued_.push_back(
      Connection::Copy("SELECT 1 / (CASE WHEN value = ? THEN 1 ELSE 0 END) FROM counters"
                       " WHERE name = 'index' FOR UPDATE",
                       {base}));
  deferred_.push_back({kNoWrite, [](const Row*) {}});
  next_ = base;
  locked_ = true;
}

Status PgTx::BeginLocked() {
  auto r =
      conn_.ExecSimpleResult("BEGIN; SELECT value FROM counters WHERE name = 'index' FOR UPDATE");
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) != 1) return Status::Internal("the index counter row is missing");
  const char* v = PQgetvalue(r->get(), 0, 0);
  next_ = 0;
  std::from_chars(v, v + PQgetlength(r->get(), 0, 0), next_);
  locked_ = true;
  return Status::Ok();
}

Status PgTx::Notify(std::string_view topic) { return AddTopic(writable_, topics_, topic); }

namespace {

// INSERT of `n` change rows (n = 1, 2, 4, 8 or 16), built once. A row without a time (0) takes
// the database's clock.
const std::string& ChangeInsertSql(size_t n) {
  static const auto kSql = [] {
    std::array<std::string, 5> sql;
    for (size_t k = 0; k < sql.size(); ++k) {
      std::string& q = sql[k];
      q = "INSERT INTO changes (seq, at, tenant, kind, name, op, actor, role, request_id, status,"
          " summary) VALUES ";
      for (size_t i = 0; i < (size_t{1} << k); ++i) {
        q += i ? ", " : "";
        q += "(?, COALESCE(NULLIF(?::BIGINT, 0), (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)"
             "::BIGINT), ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      }
    }
    return sql;
  }();
  return kSql[static_cast<size_t>(std::countr_zero(n))];
}

}  // namespace

Status PgTx::InsertChangeRows(const std::vector<ChangeRow>& rows) {
  // Multi-row VALUES statements of 16, 8, 4, 2 or 1 rows (five prepared statements in all):
  // bound parameters cost PostgreSQL far less than parsing the rows out of one JSON value
  // (measured: bench/RESULTS.md).
  constexpr size_t kColumns = 11;
  size_t done = 0;
  while (done < rows.size()) {
    size_t n = 16;
    while (n > rows.size() - done) n /= 2;
    Connection::Queued q;
    q.sql = ChangeInsertSql(n);
    q.values.reserve(n * kColumns);
    q.formats.reserve(n * kColumns);
    auto add_int = [&](int64_t v) {
      q.values.emplace_back(std::to_string(v));
      q.formats.push_back(0);
    };
    auto add_text = [&](const std::string& v) {
      q.values.emplace_back(v);
      q.formats.push_back(1);
    };
    for (size_t i = 0; i < n; ++i) {
      const ChangeRow& r = rows[done + i];
      add_int(r.seq);
      add_int(r.at);
      for (const std::string* t :
           {&r.tenant, &r.kind, &r.name, &r.op, &r.actor, &r.role, &r.request_id}) {
        add_text(*t);
      }
      add_int(r.status);
      add_text(r.summary);
    }
    done += n;
    DROVER_RETURN_IF_ERROR(DeferQueued(std::move(q)));
  }
  return Status::Ok();
}

Status PgTx::DeferQueued(Connection::Queued q) {
  if (pipelining_) {
    queued_.push_back(std::move(q));
    deferred_.push_back({current_write_, nullptr});
    return Status::Ok();
  }
  DROVER_RETURN_IF_ERROR(FlushBeforeSync());
  Status result;
  Status s = conn_.Pipeline({std::move(q)}, [&](size_t, const PGresult* r) {
    auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) result = conn_.Error(r, "statement");
  });
  return s.ok() ? result : s;
}

Result<int64_t> PgTx::NowMillis() {
  return QueryInt("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT");
}

}  // namespace drover::store::postgres
