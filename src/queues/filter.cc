#include "queues/filter.h"

#include <algorithm>
#include <boost/json.hpp>

namespace drover::queues {
namespace {

constexpr size_t kMaxConditions = 100;

// One element of an attribute's list: a string, or an object with one operator.
bool ParseCondition(const boost::json::value& v, Condition* out, std::string* why) {
  if (v.is_string()) {
    *out = {Condition::kExact, {std::string(v.as_string())}};
    return true;
  }
  if (!v.is_object() || v.as_object().size() != 1) {
    *why = "each condition is a string or an object with one of prefix, anything_but, exists";
    return false;
  }
  const auto& [key, arg] = *v.as_object().begin();
  if (key == "prefix") {
    if (!arg.is_string()) return *why = "prefix takes a string", false;
    *out = {Condition::kPrefix, {std::string(arg.as_string())}};
    return true;
  }
  if (key == "anything_but" || key == "anything-but") {
    Condition c{Condition::kAnythingBut, {}};
    if (arg.is_string()) {
      c.values.emplace_back(arg.as_string());
    } else if (arg.is_array() && arg.as_array().size() <= kMaxConditions) {
      for (const auto& x : arg.as_array()) {
        if (!x.is_string()) return *why = "anything_but takes a string or a list of strings", false;
        c.values.emplace_back(x.as_string());
      }
    } else {
      return *why = "anything_but takes a string or a list of strings", false;
    }
    *out = std::move(c);
    return true;
  }
  if (key == "exists") {
    if (!arg.is_bool()) return *why = "exists takes true or false", false;
    *out = {arg.as_bool() ? Condition::kExists : Condition::kAbsent, {}};
    return true;
  }
  *why = "unknown operator '" + std::string(key.substr(0, 40)) +
         "': use prefix, anything_but or exists";
  return false;
}

bool Holds(const Condition& c, const std::string* value) {
  switch (c.kind) {
    case Condition::kAbsent:
      return value == nullptr;
    case Condition::kExists:
      return value != nullptr;
    case Condition::kExact:
      return value && *value == c.values[0];
    case Condition::kPrefix:
      return value && value->starts_with(c.values[0]);
    case Condition::kAnythingBut:
      return value && std::find(c.values.begin(), c.values.end(), *value) == c.values.end();
  }
  return false;
}

}  // namespace

Result<FilterPolicy> ParseFilter(const boost::json::value& v) {
  FilterPolicy p;
  if (v.is_null()) return p;
  if (!v.is_object()) {
    return Status::Validation({{"filter", "must be an object of attribute names to conditions"}});
  }
  std::vector<FieldError> errors;
  if (v.as_object().size() > 10) errors.push_back({"filter", "at most 10 attributes"});
  for (const auto& [key, cond] : v.as_object()) {
    std::string field = "filter." + std::string(key.substr(0, 128));
    std::vector<Condition> conds;
    std::string why;
    if (cond.is_array()) {
      if (cond.as_array().empty() || cond.as_array().size() > kMaxConditions) {
        why = "a list of 1 to 100 conditions";
      }
      for (const auto& x : cond.as_array()) {
        Condition c;
        if (!why.empty() || !ParseCondition(x, &c, &why)) break;
        conds.push_back(std::move(c));
      }
    } else {
      Condition c;
      if (ParseCondition(cond, &c, &why)) conds.push_back(std::move(c));
    }
    if (!why.empty()) {
      errors.push_back({field, why});
      continue;
    }
    p.attributes[std::string(key)] = std::move(conds);
  }
  if (!errors.empty()) return Status::Validation(std::move(errors));
  return p;
}

bool Matches(const FilterPolicy& policy, const std::map<std::string, std::string>& attributes) {
  for (const auto& [name, conds] : policy.attributes) {
    auto it = attributes.find(name);
    const std::string* value = it == attributes.end() ? nullptr : &it->second;
    bool any = std::any_of(conds.begin(), conds.end(),
                           [&](const Condition& c) { return Holds(c, value); });
    if (!any) return false;
  }
  return true;
}

}  // namespace drover::queues
