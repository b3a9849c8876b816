#include "agent/git.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "common/process.h"
#include "common/random.h"

namespace drover::agent {
namespace {

namespace fs = std::filesystem;

std::string LastLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// Runs git with its output in a scratch file; the output is also appended to the run log.
struct Git {
  const GitOptions& options;
  std::vector<std::string> env;
  std::string scratch;

  explicit Git(const GitOptions& o) : options(o), env(CurrentEnvironment()) {
    // Never prompt (no terminal), never page, and no user config surprises in the output.
    env.push_back("GIT_TERMINAL_PROMPT=0");
    env.push_back("GIT_PAGER=cat");
    env.push_back("LC_ALL=C");
    scratch = o.repos_dir + "/.git-output-" + RandomHex(4);
  }
  ~Git() {
    std::error_code ec;
    fs::remove(scratch, ec);
  }

  // The exit code and output of `git args...` in `cwd`.
  std::pair<int, std::string> Run(std::vector<std::string> args, const std::string& cwd) {
    // No background maintenance after a fetch: it would run on every agent run.
    args.insert(args.begin(), {"git", "-c", "maintenance.auto=false", "-c", "gc.auto=0"});
    std::error_code ec;
    fs::remove(scratch, ec);
    ProcessSpec spec{args,    cwd, env, scratch, options.deadline, std::chrono::seconds(5),
                     nullptr, "",  ""};
    auto r = RunProcess(spec);
    std::string out = ReadFile(scratch).value_or("");
    if (!options.log_path.empty()) {
      std::string cmd;
      for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
      std::ofstream(options.log_path, std::ios::app) << "$ " << cmd << "\n" << out;
    }
    if (!r.error.empty()) return {127, r.error};
    if (r.timed_out) return {124, "timed out"};
    return {r.exit_code, out};
  }
};

bool LooksLikeCommit(const std::string& ref) {
  if (ref.size() < 7 || ref.size() > 40) return false;
  for (char c : ref) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string RepoDirName(const std::string& url) { return Sha256Hex(url).substr(0, 16); }

Result<Checkout> FetchAndCheckout(const std::string& url, const std::string& ref,
                                  const GitOptions& options) {
  std::error_code ec;
  fs::create_directories(options.repos_dir, ec);
  if (ec) {
    return Status::Unavailable(
        fmt::format("cannot create {}: {}", options.repos_dir, ec.message()));
  }
  Git git(options);
  Checkout out;
  std::string name = RepoDirName(url);
  out.dir = options.repos_dir + "/" + name;
  auto fail = [](std::string_view what, const std::string& output) {
    return Status::Unavailable(fmt::format("git {} failed: {}", what, LastLine(output)));
  };
  if (!fs::exists(out.dir + "/.git")) {
    fs::remove_all(out.dir, ec);  // a clone that died half-way
    auto [rc, o] = git.Run({"clone", "--quiet", "--no-checkout", "--", url, out.dir}, "");
    if (rc != 0) {
      fs::remove_all(out.dir, ec);
      return fail("clone", o);
    }
  }
  // (The URL behind a directory never changes: its name is the URL's hash.)
  // Fetch exactly what is wanted: FETCH_HEAD is then the commit to run.
  std::string want = ref.empty() ? "HEAD" : ref;
  auto [rc, o] = git.Run({"fetch", "--quiet", "--force", "--tags", "origin", want}, out.dir);
  if (rc != 0 && LooksLikeCommit(ref)) {
    // A commit the server will not hand out by id: fetch everything and look for it.
    std::tie(rc, o) = git.Run({"fetch", "--quiet", "--force", "--tags", "origin"}, out.dir);
    if (rc == 0) {
      auto [rc2, o2] = git.Run({"rev-parse", "--verify", "--quiet", ref + "^{commit}"}, out.dir);
      if (rc2 != 0) return Status::Unavailable(fmt::format("git: no commit {} in {}", ref, url));
      out.commit = LastLine(o2);
    }
  }
  if (rc != 0) return fail("fetch of " + want, o);
  if (out.commit.empty()) {
    auto [rc2, o2] = git.Run({"rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}"}, out.dir);
    if (rc2 != 0) return fail("rev-parse", o2);
    out.commit = LastLine(o2);
  }
  // Always checked out, also an unchanged commit: --force puts back tracked files a run changed.
  auto [rc3, o3] = git.Run({"checkout", "--quiet", "--force", "--detach", out.commit}, out.dir);
  if (rc3 != 0) return fail("checkout of " + out.commit, o3);
  // Directories of repositories no longer used go.
  for (const auto& entry : fs::directory_iterator(options.repos_dir, ec)) {
    auto n = entry.path().filename().string();
    if (entry.is_directory() && n != name && n.size() == 16) fs::remove_all(entry.path(), ec);
  }
  return out;
}

}  // namespace drover::agent
