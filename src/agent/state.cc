#include "agent/state.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/files.h"

namespace drover::agent {

Result<AgentState> LoadState(const std::string& path) {
  AgentState s;
  auto text = ReadFile(path);
  if (!text) return s;
  boost::system::error_code ec;
  auto v = boost::json::parse(*text, ec);
  if (ec || !v.is_object()) {
    return Status::InvalidArgument(fmt::format("{} is not a drover agent state file", path));
  }
  const auto& o = v.as_object();
  auto str = [&](const char* k) {
    auto* f = o.if_contains(k);
    return f && f->is_string() ? std::string(f->as_string()) : std::string();
  };
  auto num = [&](const char* k) {
    auto* f = o.if_contains(k);
    return f && f->is_int64() ? f->as_int64() : int64_t{0};
  };
  s.server = str("server");
  s.environment = str("environment");
  s.instance_id = str("instance_id");
  s.agent_key = str("agent_key");
  s.last_commit = str("last_commit");
  s.last_repository = str("last_repository");
  s.signed_index = num("signed_index");
  s.signed_digest = str("signed_digest");
  s.last_set_index = num("last_set_index");
  if (auto* w = o.if_contains("watcher_applied"); w && w->is_int64()) {
    s.watcher_applied = w->as_int64();
  }
  s.watcher_target = str("watcher_target");
  if (auto* set = o.if_contains("last_set"); set && set->is_object()) {
    for (const auto& [k, val] : set->as_object()) {
      if (val.is_string()) s.last_set[std::string(k)] = std::string(val.as_string());
    }
  }
  return s;
}

Status SaveState(const std::string& path, const AgentState& s) {
  boost::json::object set;
  for (const auto& [k, v] : s.last_set) set[k] = v;
  boost::json::object o{{"server", s.server},
                        {"environment", s.environment},
                        {"instance_id", s.instance_id},
                        {"agent_key", s.agent_key},
                        {"last_commit", s.last_commit},
                        {"last_repository", s.last_repository},
                        {"signed_index", s.signed_index},
                        {"signed_digest", s.signed_digest},
                        {"last_set", std::move(set)},
                        {"last_set_index", s.last_set_index},
                        {"watcher_target", s.watcher_target}};
  if (s.watcher_applied) o["watcher_applied"] = *s.watcher_applied;
  return WriteFileAtomic(path, boost::json::serialize(o), 0600);
}

}  // namespace drover::agent
