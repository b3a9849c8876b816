#include "common/status.h"

namespace drover {

std::string Status::ToString() const {
  static const char* kNames[] = {
      "ok",          "invalid argument", "validation", "unauthenticated",        "forbidden",
      "not found",   "conflict",         "too large",  "unsupported media type", "rate limited",
      "unavailable", "internal"};
  std::string s = kNames[static_cast<int>(code_)];
  if (!message_.empty()) s += ": " + message_;
  for (const auto& e : errors_) s += "; " + e.field + ": " + e.message;
  if (!detail_.empty()) s += " (" + detail_ + ")";
  return s;
}

}  // namespace drover
