#include "testing/git_repo.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

namespace drover::testing {

int Shell(const std::string& cmd, std::string* out) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

GitRepo::GitRepo() {
  const std::string& d = dir_.path();
  Shell("git init -q --bare -b main '" + d + "/repo.git' && git init -q -b main '" + d +
        "/work' && cd '" + d +
        "/work' && git config user.email test@drover && git config user.name test && "
        "git remote add origin '" +
        d + "/repo.git'");
}

std::string GitRepo::Commit(const std::map<std::string, std::string>& files,
                            const std::string& msg) {
  std::string work = dir_.path() + "/work";
  for (const auto& [path, content] : files) {
    std::string full = work + "/" + path;
    auto slash = full.rfind('/');
    Shell("mkdir -p '" + full.substr(0, slash) + "'");
    std::ofstream(full, std::ios::trunc) << content;
    if (path.ends_with(".sh")) ::chmod(full.c_str(), 0755);
  }
  std::string out;
  if (Shell("cd '" + work + "' && git add -A && git commit -q -m '" + msg +
                "' && git push -q origin main && git rev-parse HEAD",
            &out) != 0) {
    return "";
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.substr(out.rfind('\n') + 1);
}

}  // namespace drover::testing
