#pragma once
// Durations as users write them (docs/api.md, docs/environments.md): "90s", "10m", "2h", "1d",
// "500ms", compounds like "1h30m", and the long form "3 minutes", "2 hours", "7 days", "1 second".
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace drover {

// The duration, or nullopt when `s` is not one (negative values are not durations).
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view s);

// The shortest exact short form: 90000 ms -> "90s", 7200000 -> "2h", 1500 -> "1500ms".
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace drover
