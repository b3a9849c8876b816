#pragma once
// Versioned schema migrations, shared by every backend (portable SQL). Applied in order at start;
// each version once. The schema is documented in docs/schema.md.
#include <span>
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

}  // namespace drover::store
