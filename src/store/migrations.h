#pragma once
// Versioned schema migrations, shared by every backend (portable SQL). Applied in order at start;
// each version once. The schema is documented in docs/schema.md.
//
// Dialect tokens, replaced for each backend before a statement runs:
//   {{without_rowid}}  after a CREATE TABLE: "WITHOUT ROWID" on SQLite (rows live in the primary
//                      key's B-tree: one seek per lookup), "" elsewhere.
//   {{bytes}}          after a TEXT column type: byte-order comparison. COLLATE "C" on
//                      PostgreSQL (whatever the database's locale), "" on SQLite (its default):
//                      names sort and prefix-match the same way on both backends.
//   {{serial}}         a BIGINT primary key the database assigns and never reuses.
//   {{postgres_only}}  at the start of a statement: run on PostgreSQL only.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

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

// Applies the pending migrations through `tx` (a connection outside any transaction), each in
// its own transaction opened with `begin`. The caller keeps other servers out meanwhile.
Status ApplyMigrations(Tx& tx, std::string_view backend, std::string_view begin);

}  // namespace drover::store
