#include "control/values.h"

#include <fmt/format.h>
#include <strings.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "common/clock.h"
#include "common/duration.h"

namespace drover::control {
namespace {

std::optional<int64_t> WholeNumber(std::string_view v) {
  if (v.empty() || v.size() > 12) return std::nullopt;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// One level of a capacity map from JSON: a whole number >= 0, or anything scalar = "leave".
Result<CapacityLevel> Level(const boost::json::value& v, const std::string& where) {
  CapacityLevel l;
  if (v.is_int64() && v.as_int64() >= 0) {
    l.count = v.as_int64();
  } else if (v.is_uint64()) {
    l.count = static_cast<int64_t>(std::min<uint64_t>(v.as_uint64(), 1'000'000'000));
  } else if (v.is_int64()) {
    return Status::InvalidArgument(fmt::format("{} must not be negative", where));
  } else if (v.is_object() || v.is_array()) {
    return Status::InvalidArgument(fmt::format("{} must be a number", where));
  } else {
    l.leave = true;  // null, "-", 2.5, true: "leave capacity alone" at this level
  }
  return l;
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseSeconds(std::string_view v) {
  if (auto n = WholeNumber(v)) return std::chrono::seconds(*n);
  return ParseDuration(v);
}

Result<Capacity> ParseCapacity(std::string_view v) {
  Capacity c;
  if (auto n = WholeNumber(v)) {
    c.all.count = *n;
    return c;
  }
  boost::system::error_code ec;
  auto json = boost::json::parse(v, ec);
  if (ec) {
    return Status::InvalidArgument(
        "must be a whole number or a JSON map like {\"all\":3,\"aws\":{\"eu-central-1\":1}}");
  }
  if (!json.is_object()) {
    // 2.5, "three", -1: not a whole number, so capacity is left alone; negative is an error.
    if (json.is_int64() && json.as_int64() < 0) {
      return Status::InvalidArgument("must not be negative");
    }
    c.all.leave = true;
    return c;
  }
  for (const auto& [k, val] : json.as_object()) {
    std::string cloud(k);
    if (cloud == "all") {
      auto l = Level(val, "all");
      if (!l.ok()) return l.status();
      c.all = *l;
      continue;
    }
    auto& cc = c.clouds[cloud];
    if (!val.is_object()) {
      auto l = Level(val, cloud);
      if (!l.ok()) return l.status();
      cc.all = *l;
      continue;
    }
    for (const auto& [rk, rv] : val.as_object()) {
      std::string region(rk);
      auto l = Level(rv, cloud + "." + region);
      if (!l.ok()) return l.status();
      if (region == "all") {
        cc.all = *l;
      } else {
        cc.regions[region] = *l;
      }
    }
  }
  return c;
}

std::optional<int64_t> ResolveCapacity(const Capacity& c, std::string_view cloud,
                                       std::string_view region) {
  const CapacityLevel* win = nullptr;
  auto consider = [&](const CapacityLevel& l) {
    if (!win && (l.count || l.leave)) win = &l;
  };
  if (auto it = c.clouds.find(cloud); !cloud.empty() && it != c.clouds.end()) {
    if (auto r = it->second.regions.find(region);
        !region.empty() && r != it->second.regions.end()) {
      consider(r->second);
    }
    consider(it->second.all);
  }
  consider(c.all);
  if (!win || win->leave) return std::nullopt;
  return win->count;
}

std::optional<std::string> CheckValue(std::string_view key, std::string_view value) {
  if (IsUnsetValue(value)) return std::nullopt;
  if (key == "cc-a-force-run") {
    if (!ParseBool(value)) return "must be a boolean: true/false, yes/no or 1/0";
  } else if (key == "cc-a-delay" || key == "cc-a-interval" || key == "cc-a-timeout") {
    if (!ParseSeconds(value)) {
      return "must be a whole number of seconds or a duration like 90s, 10m, 2 hours";
    }
  } else if (key == "cc-a-type") {
    if (value != "shell" && value != "ansible") return "must be one of shell, ansible";
  } else if (key == "cc-a-desired-capacity" || key == "cc-w-a-desired-capacity") {
    if (auto c = ParseCapacity(value); !c.ok()) return c.status().message();
  } else if (key == "cc-a-start" || key == "cc-a-stop" || key == "cc-w-a-start" ||
             key == "cc-w-a-stop") {
    if (!ParseRfc3339(value)) return "must be an RFC 3339 time like 2026-12-01T13:00:00Z";
  } else if (key == "cc-w-a-start-offset" || key == "cc-w-s-expression") {
    if (!ParseDuration(value)) return "must be a duration like 3m, 90s or 3 minutes";
  } else if (key == "cc-a-repository") {
    bool url =
        value.starts_with("https://") || value.starts_with("http://") ||
        value.starts_with("ssh://") || value.starts_with("git://") ||
        value.starts_with("file://") || value.starts_with("/") ||
        (value.find('@') != std::string_view::npos && value.find(':') != std::string_view::npos);
    if (!url || value.find_first_of(" \t\r\n") != std::string_view::npos) {
      return "must be a Git URL: https://, ssh://, git@host:path, file:// or an absolute path";
    }
  }
  return std::nullopt;
}

std::string EnvName(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '-') {
      out += '_';
    } else if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - 'a' + 'A');
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace drover::control
