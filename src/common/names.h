#pragma once
// Resource names: [a-z0-9][a-z0-9-]{0,62} (docs/api.md).
#include <string_view>

namespace drover {

// True when `name` is a valid resource name.
bool IsValidName(std::string_view name);

// The rule, for error messages.
inline constexpr std::string_view kNameRule =
    "must match [a-z0-9][a-z0-9-]{0,62}: lower-case letters, digits and '-', starting with a "
    "letter or digit, at most 63 characters";

}  // namespace drover
