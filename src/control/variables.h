#pragma once
// Control-center variables: key/value strings per tenant, global or scoped to an environment.
// Every change takes the next value of the store's global change index (create_index on
// creation, modify_index on every change). Thread-safe; writes are group-committed.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/page.h"
#include "common/status.h"
#include "control/values.h"
#include "store/store.h"

namespace drover::control {

struct Variable {
  std::string key;
  std::string environment;  // "" = global
  std::string value;
  int64_t create_index = 0;
  int64_t modify_index = 0;
  int64_t updated_at_ms = 0;
};

struct PutResult {
  Variable variable;
  bool created = false;
};

struct ListQuery {
  std::string prefix;
  std::optional<std::string> environment;  // nullopt: every scope; "": global only
  std::string cursor;                      // from a previous page's next_cursor
  int limit = 100;
};

using VariablePage = Page<Variable>;

// The change topic (store::Tx::Notify) of every variable write: blocking reads wait on it.
inline constexpr std::string_view kTopic = "variables";
// Also notified by a write of a watcher variable (cc-w-*), so the capacity windows built from
// them reload on those writes only, not on every variable write.
inline constexpr std::string_view kWatcherPrefix = "cc-w-";
inline constexpr std::string_view kWatcherTopic = "variables/cc-w";

// Longest value accepted, in bytes.
inline constexpr std::size_t kMaxValueBytes = 512 * 1024;

class VariableService {
 public:
  VariableService(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Validates key, environment and value; Validation status with field errors otherwise.
  static Status Validate(std::string_view key, std::string_view environment,
                         std::string_view value);

  // Creates or replaces; `done` after the commit (on the writer thread).
  void Put(std::string tenant, std::string key, std::string environment, std::string value,
           std::function<void(Result<PutResult>)> done);
  // NotFound when absent.
  Result<Variable> Get(const std::string& tenant, const std::string& key,
                       const std::string& environment);
  // InvalidArgument for a bad cursor.
  Result<VariablePage> List(const std::string& tenant, const ListQuery& q);
  // The effective set an agent or watcher sees: every variable whose key starts with `prefix`,
  // the environment's value over the global one, and values that mean "unset" (IsUnsetValue)
  // left out — so an environment can unset a global value with "-". `environment` "" = global.
  // `env_defaults` (an environment's agent: block) sits between the global and the
  // environment's own variables.
  Result<std::map<std::string, std::string>> Effective(
      const std::string& tenant, const std::string& environment, const std::string& prefix,
      const std::map<std::string, std::string>& env_defaults = {});
  // Every variable of every tenant whose key starts with `prefix`, as (tenant, variable): for
  // the watcher windows, which read all cc-w-* variables at once.
  Result<std::vector<std::pair<std::string, Variable>>> AllWithPrefix(const std::string& prefix);
  // NotFound when absent; `done` after the commit.
  void Delete(std::string tenant, std::string key, std::string environment,
              std::function<void(Status)> done);

 private:
  store::Store& store_;
  const Clock& clock_;
};

}  // namespace drover::control
