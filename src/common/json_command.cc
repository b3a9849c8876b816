#include "common/json_command.h"

#include <fmt/format.h>

#include <filesystem>

#include "common/duration.h"
#include "common/files.h"
#include "common/process.h"
#include "common/random.h"

namespace drover {

namespace fs = std::filesystem;

std::string TailText(std::string s, std::size_t n) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

Result<std::string> RunJsonCommand(const JsonCommand& c, const std::string& input) {
  std::error_code ec;
  fs::create_directories(c.dir, ec);
  std::string base = c.dir + "/" + c.what + "-" + RandomHex(6);
  if (Status s = WriteFileAtomic(base + ".in", input, 0600); !s.ok()) {
    return Status::Unavailable(fmt::format("{}: {}", c.what, s.message()));
  }
  auto vars = CurrentEnvironment();
  vars.insert(vars.end(), c.extra_env.begin(), c.extra_env.end());
  ProcessSpec spec{{"sh", "-c", c.command},
                   c.cwd.empty() ? c.dir : c.cwd,
                   vars,
                   base + ".err",
                   std::chrono::steady_clock::now() + c.timeout,
                   std::chrono::seconds(5),
                   nullptr,
                   base + ".in",
                   base + ".out"};
  auto r = RunProcess(spec);
  std::string out = ReadFile(base + ".out").value_or(""),
              err = ReadFile(base + ".err").value_or("");
  for (auto ext : {".in", ".out", ".err"}) fs::remove(base + ext, ec);
  if (!r.error.empty()) return Status::Unavailable(fmt::format("{}: {}", c.what, r.error));
  if (r.timed_out) {
    return Status::Unavailable(fmt::format("{} timed out after {} and was killed; stderr: {}",
                                           c.what, FormatDuration(c.timeout), TailText(err, 500)));
  }
  if (r.exit_code != 0) {
    return Status::Unavailable(
        fmt::format("{} exited {}; stderr: {}", c.what, r.exit_code, TailText(err, 500)));
  }
  return out;
}

}  // namespace drover
