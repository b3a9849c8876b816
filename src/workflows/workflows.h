#pragma once
// Workflow definitions in the store (docs/workflows.md): a new version on each change, every
// version kept while executions may use it. Thread-safe.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/page.h"
#include "common/status.h"
#include "store/store.h"
#include "workflows/definition.h"

namespace drover::workflows {

struct Workflow {
  std::string tenant, name;
  int64_t version = 0;
  std::string spec_json;          // the spec as given (compact JSON)
  std::vector<int64_t> versions;  // every version kept, oldest first (Get only)
  int64_t created_at_ms = 0, updated_at_ms = 0, modify_index = 0;
};

class WorkflowService {
 public:
  explicit WorkflowService(store::Store& store);
  ~WorkflowService();

  // Stores `spec_json` (parsed by ParseWorkflowDocument) as the next version, unless it equals
  // the current one (kUnchanged).
  void Put(std::string tenant, std::string name, std::string spec_json,
           std::function<void(Result<std::pair<Workflow, Written>>)> done);
  // The current version (version 0) or the one asked for.
  Result<Workflow> Get(const std::string& tenant, const std::string& name, int64_t version = 0);
  Result<Page<Workflow>> List(const std::string& tenant, const std::string& cursor, int limit);
  // Removes the definition; running executions finish on the version they have.
  void Delete(std::string tenant, std::string name, std::function<void(Status)> done);

  // A version's parsed spec (versions never change, so it is cached).
  Result<std::shared_ptr<const WorkflowSpec>> Spec(const std::string& tenant,
                                                   const std::string& name, int64_t version);
  // The same inside a write (the engine's transactions).
  Result<std::shared_ptr<const WorkflowSpec>> SpecInTx(store::Tx& tx, const std::string& tenant,
                                                       const std::string& name, int64_t version);
  // The current version number inside a write; NotFound when there is no such workflow.
  Result<int64_t> CurrentVersionInTx(store::Tx& tx, const std::string& tenant,
                                     const std::string& name);

 private:
  Result<std::shared_ptr<const WorkflowSpec>> Cached(const std::string& key);
  Result<std::shared_ptr<const WorkflowSpec>> Load(store::Tx& tx, const std::string& tenant,
                                                   const std::string& name, int64_t version);
  void ForgetVersions();
  store::Store& store_;
  int subscription_ = -1;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const WorkflowSpec>> cache_;  // GUARDED_BY(mu_)
  // The current version by "tenant\nname": every server drops it on a change of any workflow
  // (the store's notifications), so a new version is used within milliseconds everywhere.
  std::map<std::string, int64_t> current_;  // GUARDED_BY(mu_)
};

}  // namespace drover::workflows
