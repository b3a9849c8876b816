#pragma once
// The built-in alert rules (docs/alerts.md#built-in-rules): every tenant gets them once, as
// ordinary rules it may change or delete; a deleted one stays deleted.
#include <string>
#include <string_view>
#include <vector>

namespace drover::alerts {

struct DefaultRule {
  std::string_view name;
  std::string_view spec_json;
};

const std::vector<DefaultRule>& DefaultRules();

}  // namespace drover::alerts
