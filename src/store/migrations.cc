#include "store/migrations.h"

#include <fmt/format.h>

#include <chrono>

#include "common/log.h"

namespace drover::store {

std::span<const Migration> AllMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "foundation: counters, api keys, variables",
       {
           "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
           "INSERT INTO counters (name, value) VALUES ('index', 0)",
           "CREATE TABLE api_keys ("
           " id TEXT {{bytes}} PRIMARY KEY,"
           " name TEXT NOT NULL,"
           " role TEXT NOT NULL,"
           " tenant TEXT {{bytes}} NOT NULL,"
           " hash TEXT NOT NULL UNIQUE,"
           " rate_rps BIGINT,"
           " rate_burst BIGINT,"
           " created_at BIGINT NOT NULL)",
           "CREATE INDEX api_keys_tenant ON api_keys (tenant, id)",
           "CREATE TABLE variables ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " environment TEXT {{bytes}} NOT NULL,"
           " key TEXT {{bytes}} NOT NULL,"
           " value TEXT NOT NULL,"
           " create_index BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           // Key before environment: point reads and key-ordered listing share this one index,
           // which on SQLite holds the rows themselves.
           " PRIMARY KEY (tenant, key, environment)) {{without_rowid}}",
       }},
      {2,
       "leases",
       {
           "CREATE TABLE leases ("
           " name TEXT {{bytes}} PRIMARY KEY,"
           " holder TEXT NOT NULL,"
           " generation BIGINT NOT NULL,"
           " expires_at BIGINT NOT NULL)",
       }},
  };
  return kMigrations;
}

std::string ForBackend(std::string_view sql, std::string_view backend) {
  static constexpr std::pair<std::string_view, std::string_view> kTokens[] = {
      {"{{without_rowid}}", "WITHOUT ROWID"},  // sqlite, "" elsewhere
      {"{{bytes}}", "COLLATE \"C\""},          // postgres, "" elsewhere (SQLite's default)
  };
  std::string out(sql);
  for (auto [token, text] : kTokens) {
    bool applies = (token == "{{without_rowid}}") == (backend == "sqlite");
    for (auto pos = out.find(token); pos != std::string::npos; pos = out.find(token, pos)) {
      out.replace(pos, token.size(), applies ? text : "");
    }
  }
  return out;
}

Status ApplyMigrations(Tx& tx, std::string_view backend, std::string_view begin) {
  auto exec = [&tx](std::string_view sql) { return tx.Exec(sql).status(); };
  DROVER_RETURN_IF_ERROR(
      exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
           "NOT NULL, applied_at BIGINT NOT NULL)"));
  auto current = tx.QueryInt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!current.ok()) return current.status();
  for (const auto& m : AllMigrations()) {
    if (m.version <= *current) continue;
    DROVER_RETURN_IF_ERROR(exec(begin));
    Status s;
    for (auto stmt : m.statements) {
      s = exec(ForBackend(stmt, backend));
      if (!s.ok()) break;
    }
    if (s.ok()) {
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      s = tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                  {int64_t{m.version}, m.name, int64_t{now}})
              .status();
    }
    if (s.ok()) s = exec("COMMIT");
    if (!s.ok()) {
      (void)exec("ROLLBACK");
      return Status::Unavailable(
          fmt::format("migration {} ({}) failed: {}", m.version, m.name, s.ToString()));
    }
    LogInfo("applied migration {} ({})", m.version, m.name);
  }
  return Status::Ok();
}

}  // namespace drover::store
