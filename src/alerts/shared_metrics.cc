#include "alerts/shared_metrics.h"

namespace drover::alerts {

std::string SharedPart(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line.front() == '#' || line.starts_with("process_")) continue;
    std::string_view name = line.substr(0, line.find_first_of("{ "));
    if (name.ends_with("_total") || name.ends_with("_bucket") || name.ends_with("_sum") ||
        name.ends_with("_count")) {
      out.append(line);
      out += '\n';
    }
  }
  return out;
}

}  // namespace drover::alerts
