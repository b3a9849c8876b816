#pragma once
// The value rules of control-center variables (docs/environments.md), in one place for the server
// (which validates what is stored) and the agent (which interprets what it reads):
// - an empty value or "-" means "not set, use the default";
// - booleans: true/false/yes/no/1/0, any case;
// - durations: "90s", "10m", and the long form "3 minutes", "2 hours", "7 days";
// - seconds (cc-a-delay, cc-a-interval, cc-a-timeout): a whole number of seconds, or a duration;
// - capacity: a whole number, or a map {"all":3,"aws":{"all":2,"eu-central-1":1}} resolved
//   cloud.region > cloud.all > all; a value that is not a whole number leaves capacity alone.
// No I/O; links into both the server and the agent.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/text.h"

namespace drover::control {

// docs/environments.md: an empty value or "-" means "not set, use the default", for every cc-*
// variable.
inline bool IsUnsetValue(std::string_view v) { return v.empty() || v == "-"; }

using drover::ParseBool;  // common/text.h: the one boolean form, everywhere

// cc-a-delay / cc-a-interval / cc-a-timeout: "30" (seconds) or a duration ("30s", "2 minutes").
std::optional<std::chrono::milliseconds> ParseSeconds(std::string_view v);

// A capacity value: `all` is the plain number (or the map's "all"); `clouds` the per-cloud maps.
// A level holding something other than a whole number (null, "-", 2.5) is kept as `leave`.
struct CapacityLevel {
  std::optional<int64_t> count;  // nullopt: absent
  bool leave = false;            // present but not a whole number: leave capacity alone
};
struct CloudCapacity {
  CapacityLevel all;
  std::map<std::string, CapacityLevel, std::less<>> regions;
};
struct Capacity {
  CapacityLevel all;
  std::map<std::string, CloudCapacity, std::less<>> clouds;
};

// Parses "3" or the JSON map. InvalidArgument (with the reason) for anything else: malformed
// JSON, negative numbers, nesting deeper than cloud.region.
Result<Capacity> ParseCapacity(std::string_view v);

// The capacity for an instance group in `cloud`/`region` ("" when unknown): the most specific
// level present wins (cloud.region > cloud.all > all); nullopt means "leave capacity alone"
// (nothing applies, or the winning level is not a whole number).
std::optional<int64_t> ResolveCapacity(const Capacity& c, std::string_view cloud,
                                       std::string_view region);

// Checks the value of a known cc-* variable against its form; the reason when it does not fit,
// nullopt when it does (or the key is not a known one, or the value means "unset").
std::optional<std::string> CheckValue(std::string_view key, std::string_view value);

// The executor environment name of a cc-a-* key: "cc-a-build-tag" -> "CC_A_BUILD_TAG".
std::string EnvName(std::string_view key);

}  // namespace drover::control
