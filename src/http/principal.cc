#include "http/principal.h"

namespace drover::http {

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kAdmin:
      return "admin";
    case Role::kUser:
      return "user";
    case Role::kViewer:
      return "viewer";
    case Role::kAgent:
      return "agent";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view s) {
  if (s == "admin") return Role::kAdmin;
  if (s == "user") return Role::kUser;
  if (s == "viewer") return Role::kViewer;
  if (s == "agent") return Role::kAgent;
  return std::nullopt;
}

}  // namespace drover::http
