#pragma once
// Versioned schema migrations, shared by every backend (portable SQL). Applied in order at start;
// each version once. The schema is documented in docs/schema.md.
//
// One dialect token may appear in a statement, replaced by each backend before running it:
//   {{without_rowid}}  after a CREATE TABLE: " WITHOUT ROWID" on SQLite (rows live in the primary
//                      key's B-tree: one seek per lookup), "" elsewhere.
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace drover::store {

struct Migration {
  int version;
  std::string_view name;
  std::vector<std::string_view> statements;
};

// Every migration, in version order.
std::span<const Migration> AllMigrations();

// `sql` with the dialect tokens replaced for `backend` ("sqlite" or "postgres").
std::string ForBackend(std::string_view sql, std::string_view backend);

}  // namespace drover::store
