#pragma once
// Who is calling: the key, its role and its tenant. Plain data, no I/O.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace drover::http {

// admin: everything, all tenants. user: its tenant's resources. viewer: read-only, its tenant.
// agent: its own instance's endpoints and its environment's control-center variables.
enum class Role { kAdmin, kUser, kViewer, kAgent };

std::string_view RoleName(Role r);
std::optional<Role> ParseRole(std::string_view s);

struct Principal {
  std::string key_id;
  std::string key_name;
  Role role = Role::kViewer;
  std::string tenant;
  // Per-key rate limit override; 0 rps = unlimited; nullopt = server default for the role.
  std::optional<double> rate_rps;
  std::optional<double> rate_burst;
  // Agent keys made by a join act only for this instance and read only this environment's
  // variables; both empty for other keys.
  std::string environment;
  std::string instance;
  bool authenticated() const { return !key_id.empty(); }
  // True when this caller may see resources of `tenant`.
  bool CanSeeTenant(std::string_view t) const { return role == Role::kAdmin || t == tenant; }
};

// Who is behind a bearer token: the key service (auth/keys.h) answers it for the pipeline.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // The caller behind `token`. Unauthenticated when unknown; Unavailable when it cannot be
  // told now.
  virtual Result<std::shared_ptr<const Principal>> Authenticate(std::string_view token) = 0;
  // The caller behind `token` when memory knows it now (a verified key, cached and fresh);
  // null when only Authenticate can tell (it may read the store).
  virtual std::shared_ptr<const Principal> Cached(std::string_view token) const {
    (void)token;
    return nullptr;
  }
};

}  // namespace drover::http
