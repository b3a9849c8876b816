#pragma once
// Whole-file reads and crash-safe writes, for the small files drover keeps (keys, agent state,
// queued reports, specs).
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace drover {

// The whole content of `path`; nullopt when it cannot be opened.
std::optional<std::string> ReadFile(const std::string& path);

// Writes `data` to `path` so that a crash leaves the old content or the new, never a mix: a
// temp file beside it (created with `mode`), fsync, rename. Unavailable with the reason.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode);

}  // namespace drover
