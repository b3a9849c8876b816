#pragma once
// Fetching the repository an agent runs, through the `git` CLI (so every transport, credential
// helper and ssh setting of the machine works as it does for its users): one clone per
// repository URL under `repos_dir`, then fetch + checkout of the wanted ref on later runs.
#include <chrono>
#include <string>

#include "common/status.h"

namespace drover::agent {

struct Checkout {
  std::string dir;     // the working tree
  std::string commit;  // full hash of the checked-out commit
};

struct GitOptions {
  std::string repos_dir;  // one directory per repository below it
  std::string log_path;   // git's output is appended here
  std::chrono::steady_clock::time_point deadline;
};

// Clones `url` if needed, fetches `ref` (a branch, tag or commit; empty = the remote's HEAD) and
// checks it out detached. Unavailable with git's reason on any failure. Directories of other
// repositories under repos_dir are removed after a successful checkout.
Result<Checkout> FetchAndCheckout(const std::string& url, const std::string& ref,
                                  const GitOptions& options);

// The directory name for `url`: a short hash, stable across runs.
std::string RepoDirName(const std::string& url);

}  // namespace drover::agent
