#include "fleet/exec_provider.h"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "common/json_command.h"

namespace drover::fleet {

void ExecProvider::SetServerUrl(const std::string& url) {
  std::lock_guard lock(mu_);
  server_url_ = url;
}

Mode ExecProvider::ModeFor(const env::Environment& env) const {
  if (!env.spec.exec) return Mode::kJoin;
  if (!env.spec.exec->create.empty()) return Mode::kInstances;
  if (!env.spec.exec->set_capacity.empty()) return Mode::kGroup;
  return Mode::kJoin;
}

Result<std::string> ExecProvider::Run(const env::Environment& env, const std::string& what,
                                      const std::string& command, const std::string& input) {
  const auto& x = *env.spec.exec;
  JsonCommand c{what, command, dir_, "", {}, x.timeout};
  for (const auto& [k, v] : x.env) c.extra_env.push_back(k + "=" + v);
  return RunJsonCommand(c, input);
}
Result<Started> ExecProvider::Create(const env::Environment& env, const std::string& instance_id) {
  std::string url;
  {
    std::lock_guard lock(mu_);
    url = server_url_;
  }
  boost::json::object in{{"environment", env.name},
                         {"tenant", env.tenant},
                         {"instance_id", instance_id},
                         {"join_token", env.join_token},
                         {"server_url", url}};
  auto out = Run(env, "create", env.spec.exec->create, boost::json::serialize(in));
  if (!out.ok()) return out.status();
  boost::system::error_code ec;
  auto v = boost::json::parse(*out, ec);
  const boost::json::object* o = !ec && v.is_object() ? &v.as_object() : nullptr;
  const auto* id = o ? o->if_contains("provider_id") : nullptr;
  if (!id || !id->is_string() || id->as_string().empty()) {
    return Status::Unavailable(
        fmt::format("create printed no JSON object with a provider_id: {}", TailText(*out, 300)));
  }
  Started s;
  s.provider_id = std::string(id->as_string());
  if (const auto* a = o->if_contains("address"); a && a->is_string()) {
    s.address = std::string(a->as_string());
  }
  s.data = *out;
  return s;
}

Status ExecProvider::Delete(const env::Environment& env, const env::Instance& inst) {
  if (inst.provider_id.empty()) return Status::Ok();  // never created
  boost::json::object in{{"environment", env.name},
                         {"tenant", env.tenant},
                         {"instance_id", inst.id},
                         {"provider_id", inst.provider_id}};
  return Run(env, "delete", env.spec.exec->del, boost::json::serialize(in)).status();
}

std::optional<Result<std::set<std::string>>> ExecProvider::List(const env::Environment& env) {
  if (ModeFor(env) != Mode::kInstances || env.spec.exec->list.empty()) return std::nullopt;
  boost::json::object in{{"environment", env.name}, {"tenant", env.tenant}};
  auto out = Run(env, "list", env.spec.exec->list, boost::json::serialize(in));
  if (!out.ok()) return out.status();
  boost::system::error_code ec;
  auto v = boost::json::parse(*out, ec);
  const boost::json::array* items = nullptr;
  if (!ec && v.is_array()) items = &v.as_array();
  if (!ec && v.is_object()) {
    if (auto* i = v.as_object().if_contains("instances"); i && i->is_array())
      items = &i->as_array();
  }
  if (!items) {
    return Status::Unavailable(fmt::format(
        "list printed no {{\"instances\": [...]}} or JSON array: {}", TailText(*out, 300)));
  }
  std::set<std::string> ids;
  for (const auto& item : *items) {
    if (item.is_string()) {
      ids.emplace(item.as_string());
    } else if (const auto* id =
                   item.is_object() ? item.as_object().if_contains("provider_id") : nullptr;
               id && id->is_string()) {
      ids.emplace(id->as_string());
    } else {
      return Status::Unavailable(fmt::format("list: an item without a provider_id: {}",
                                             TailText(boost::json::serialize(item), 200)));
    }
  }
  return ids;
}

Status ExecProvider::SetCapacity(const env::Environment& env, int64_t desired) {
  std::string url;
  {
    std::lock_guard lock(mu_);
    url = server_url_;
  }
  boost::system::error_code ec;
  auto capacity = boost::json::parse(env.capacity(), ec);
  if (ec) capacity = env.capacity();
  const auto& x = *env.spec.exec;
  boost::json::object in{
      {"environment", env.name},      {"tenant", env.tenant}, {"desired", desired},
      {"capacity", capacity},         {"cloud", x.cloud},     {"region", x.region},
      {"join_token", env.join_token}, {"server_url", url}};
  return Run(env, "set_capacity", x.set_capacity, boost::json::serialize(in)).status();
}

}  // namespace drover::fleet
