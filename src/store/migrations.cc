#include "store/migrations.h"

namespace drover::store {

std::span<const Migration> AllMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "foundation: counters, api keys, variables",
       {
           "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
           "INSERT INTO counters (name, value) VALUES ('index', 0)",
           "CREATE TABLE api_keys ("
           " id TEXT PRIMARY KEY,"
           " name TEXT NOT NULL,"
           " role TEXT NOT NULL,"
           " tenant TEXT NOT NULL,"
           " hash TEXT NOT NULL UNIQUE,"
           " rate_rps BIGINT,"
           " rate_burst BIGINT,"
           " created_at BIGINT NOT NULL)",
           "CREATE INDEX api_keys_tenant ON api_keys (tenant, id)",
           "CREATE TABLE variables ("
           " tenant TEXT NOT NULL,"
           " environment TEXT NOT NULL,"
           " key TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " create_index BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           // Key before environment: point reads and key-ordered listing share this one index,
           // which on SQLite holds the rows themselves.
           " PRIMARY KEY (tenant, key, environment)) {{without_rowid}}",
       }},
  };
  return kMigrations;
}

std::string ForBackend(std::string_view sql, std::string_view backend) {
  std::string out(sql);
  constexpr std::string_view kToken = "{{without_rowid}}";
  if (auto pos = out.find(kToken); pos != std::string::npos) {
    out.replace(pos, kToken.size(), backend == "sqlite" ? "WITHOUT ROWID" : "");
  }
  return out;
}

}  // namespace drover::store
