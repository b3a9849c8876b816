#pragma once
// Alert rules in the store (docs/alerts.md), named per tenant. Thread-safe.
#include <functional>
#include <string>

#include "common/page.h"
#include "common/status.h"
#include "events/spec_rows.h"
#include "store/store.h"

namespace drover::alerts {

// A stored rule: its spec as given (checked by ParseRuleDocument before it is stored).
using AlertRule = events::SpecRow;

inline constexpr events::SpecTable kAlertTable{"alerts", "alert", "alerts",
                                               /*global_names=*/false, ""};

class AlertService {
 public:
  explicit AlertService(store::Store& store) : store_(store) {}

  void Put(std::string tenant, std::string name, std::string spec_json,
           std::function<void(Result<std::pair<AlertRule, Written>>)> done);
  Result<AlertRule> Get(const std::string& tenant, const std::string& name);
  Result<Page<AlertRule>> List(const std::string& tenant, const std::string& cursor, int limit);
  void Delete(std::string tenant, std::string name, std::function<void(Status)> done);

 private:
  store::Store& store_;
};

// Gives every tenant that has an API key (and `default`) the built-in rules (DefaultRules) it
// was never given, in `tx`. A rule of the same name the tenant already has is kept as it is.
Status SeedDefaultRules(store::Tx& tx);

}  // namespace drover::alerts
