#pragma once
// Subscription filter policies on message attributes, the subset of SNS's people use
// (docs/queues.md): {"attr": "exact"}, {"attr": ["a", "b"]}, {"attr": {"prefix": "eu-"}},
// {"attr": {"anything_but": ["x"]}}, {"attr": {"exists": false}}; a list may mix strings and
// such objects. Every attribute named must match (and); within one, any condition (or).
// Pure: no store, no clock.
#include <boost/json/fwd.hpp>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace drover::queues {

struct Condition {
  enum Kind { kExact, kPrefix, kAnythingBut, kExists, kAbsent } kind = kExact;
  std::vector<std::string> values;  // one for exact and prefix; the excluded for anything_but
};

struct FilterPolicy {
  std::map<std::string, std::vector<Condition>> attributes;  // empty: every message
};

// The policy, or a Validation status naming "filter.<attribute>".
Result<FilterPolicy> ParseFilter(const boost::json::value& v);

bool Matches(const FilterPolicy& policy, const std::map<std::string, std::string>& attributes);

}  // namespace drover::queues
