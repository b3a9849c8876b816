#pragma once
// A provider command (docs/fleet.md): `sh -c COMMAND` in a directory, one JSON object on stdin, its
// stdout returned; a timeout kills its process group; a failure's message carries the tail of
// its stderr. Used by the server's exec provider and by the agent-side watcher.
#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace drover {

struct JsonCommand {
  std::string what;                    // "create", "set_capacity": names the command in errors
  std::string command;                 // run with sh -c
  std::string dir;                     // scratch files are made (and removed) here
  std::string cwd;                     // working directory ("" = dir)
  std::vector<std::string> extra_env;  // "NAME=value" added to this process's environment
  std::chrono::milliseconds timeout{60000};
};

// Its stdout; Unavailable (with why and the stderr tail) when it cannot start, exits non-zero
// or times out.
Result<std::string> RunJsonCommand(const JsonCommand& c, const std::string& input);

// The last `n` characters of `s` without trailing blanks, "..." first when cut.
std::string TailText(std::string s, std::size_t n);

}  // namespace drover
