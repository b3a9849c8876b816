#pragma once
// The `exec` provider (docs/fleet.md): the environment's own commands do the work. Each command
// runs with `sh -c` in DATA_DIR/exec, gets one JSON object on stdin and prints one on stdout;
// stderr is kept for the event that explains a failure; a command over its timeout is killed with
// its process group; a non-zero exit is a failed attempt (the controller backs off).
//   create        {environment, tenant, instance_id, join_token, server_url}
//                 -> {provider_id, address}   (the instance's agent joins with --instance-id)
//   delete        {environment, tenant, instance_id, provider_id} -> anything
//   list          {environment, tenant} -> {"instances": [{"provider_id": ...}, ...]}
//                 (instance mode, optional: an instance it no longer lists is gone)
//   set_capacity  {environment, tenant, desired, capacity, cloud, region, join_token, server_url}
//                 (group mode: a cloud's group sets its own size; its agents join by themselves)
#include <mutex>
#include <set>
#include <string>

#include "fleet/provider.h"

namespace drover::fleet {

class ExecProvider final : public Provider {
 public:
  explicit ExecProvider(std::string data_dir) : dir_(std::move(data_dir) + "/exec") {}
  std::string_view Name() const override { return "exec"; }
  // With create/delete commands each instance; with set_capacity a group.
  Mode ModeFor(const env::Environment& env) const override;
  void SetServerUrl(const std::string& url) override;
  Result<Started> Create(const env::Environment& env, const std::string& instance_id) override;
  Status Delete(const env::Environment& env, const env::Instance& inst) override;
  // The provider ids `list` prints: {"instances":[{"provider_id":..}]}, or a bare array of such
  // objects or of id strings; nullopt without a list command.
  std::optional<Result<std::set<std::string>>> List(const env::Environment& env) override;
  // Group mode: the group's size is `desired` (the capacity map resolved for its cloud/region).
  Status SetCapacity(const env::Environment& env, int64_t desired) override;

 private:
  // Runs `command` with `input` on stdin; its stdout parsed as JSON (null when empty).
  Result<std::string> Run(const env::Environment& env, const std::string& what,
                          const std::string& command, const std::string& input);
  std::string dir_;
  std::mutex mu_;
  std::string server_url_;  // GUARDED_BY(mu_)
};

}  // namespace drover::fleet
