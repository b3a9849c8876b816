#include "fleet/exec_provider.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/process.h"
#include "common/duration.h"
#include "common/files.h"
#include "common/random.h"

namespace drover::fleet {
namespace {

namespace fs = std::filesystem;

std::string Tail(std::string s, std::size_t n) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.size() > n ? "..." + s.substr(s.size() - n) : s;
}

}  // namespace

void ExecProvider::SetServerUrl(std::string url) {
  std::lock_guard lock(mu_);
  server_url_ = std::move(url);
}

Result<std::string> ExecProvider::Run(const env::Environment& env, const std::string& what,
                                      const std::string& command, const std::string& input) {
  const auto& x = *env.spec.exec;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  std::string base = dir_ + "/" + env.name + "-" + what + "-" + RandomHex(4);
  { std::ofstream(base + ".in") << input; }
  auto vars = agent::CurrentEnvironment();
  for (const auto& [k, v] : x.env) vars.push_back(k + "=" + v);
  agent::ProcessSpec spec{{"sh", "-c", command},
                          dir_,
                          vars,
                          base + ".err",
                          std::chrono::steady_clock::now() + x.timeout,
                          std::chrono::seconds(5),
                          nullptr,
                          base + ".in",
                          base + ".out"};
  auto r = agent::RunProcess(spec);
  std::string out = ReadFile(base + ".out").value_or(""),
              err = ReadFile(base + ".err").value_or("");
  for (auto ext : {".in", ".out", ".err"}) fs::remove(base + ext, ec);
  if (!r.error.empty()) return Status::Unavailable(fmt::format("{}: {}", what, r.error));
  if (r.timed_out) {
    return Status::Unavailable(fmt::format("{} timed out after {} and was killed; stderr: {}", what,
                                           FormatDuration(x.timeout), Tail(err, 500)));
  }
  if (r.exit_code != 0) {
    return Status::Unavailable(
        fmt::format("{} exited {}; stderr: {}", what, r.exit_code, Tail(err, 500)));
  }
  return out;
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
        fmt::format("create printed no JSON object with a provider_id: {}", Tail(*out, 300)));
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
