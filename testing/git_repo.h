#pragma once
// A real Git repository for agent tests: a bare repository (what agents clone, by file:// URL)
// and a working clone to commit to, both in a temp dir.
#include <map>
#include <string>

#include "testing/temp_dir.h"

namespace drover::testing {

class GitRepo {
 public:
  GitRepo();
  // Writes `files` (path -> content; executable when the path ends in .sh), commits and pushes
  // to the bare repository's `main`. Returns the new commit's full hash ("" on failure).
  std::string Commit(const std::map<std::string, std::string>& files, const std::string& msg);
  std::string url() const { return "file://" + dir_.path() + "/repo.git"; }

 private:
  TempDir dir_;
};

// Runs `cmd` with sh; returns its exit code and (in `out`) its stdout+stderr.
int Shell(const std::string& cmd, std::string* out = nullptr);

}  // namespace drover::testing
