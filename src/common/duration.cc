#include "common/duration.h"

#include <cctype>
#include <cstdint>

namespace drover {
namespace {

std::optional<int64_t> UnitMillis(std::string_view u) {
  if (u == "ms" || u == "millisecond" || u == "milliseconds") return 1;
  if (u == "s" || u == "sec" || u == "secs" || u == "second" || u == "seconds") return 1000;
  if (u == "m" || u == "min" || u == "mins" || u == "minute" || u == "minutes") return 60000;
  if (u == "h" || u == "hr" || u == "hrs" || u == "hour" || u == "hours") return 3600000;
  if (u == "d" || u == "day" || u == "days") return 86400000;
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    constexpr int64_t kCentury = 100LL * 365 * 86400000;  // ms; more is a typo
    int64_t n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      n = n * 10 + (s[i] - '0');
      if (n > kCentury) return std::nullopt;  // even in ms: and no digit can overflow n
      ++i;
    }
    while (i < s.size() && s[i] == ' ') ++i;
    size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    auto mult = UnitMillis(s.substr(u, i - u));
    if (!mult) return std::nullopt;
    // Checked before multiplying, so nothing can overflow.
    if (n > (kCentury - total) / *mult) return std::nullopt;
    total += n * *mult;
    while (i < s.size() && s[i] == ' ') ++i;
  }
  return std::chrono::milliseconds(total);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 86400000 == 0) return std::to_string(ms / 86400000) + "d";
  if (ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace drover
