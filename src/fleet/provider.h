#pragma once
// How instances come to exist (docs/fleet.md). The controller asks a provider to start and stop
// instances, whether one still exists, what a cloud lists, or how big a group should be; the
// instance's agent then joins by itself. Providers are found by name in a registry: the
// controller knows the interface only.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "env/records.h"
#include "fleet/plan.h"

namespace drover::fleet {

struct Started {
  std::string provider_id;
  std::string address;  // host:port where its service listens ("" when none)
  std::string data;     // JSON the provider needs to find it again
};

class Provider {
 public:
  virtual ~Provider() = default;
  // The name environments give as `provider:`.
  virtual std::string_view Name() const = 0;
  // How it runs `env`: joins only, each instance, or a group.
  virtual Mode ModeFor(const env::Environment& env) const = 0;
  // Starts instance `instance_id` of `env`, whose agent joins with the environment's token.
  virtual Result<Started> Create(const env::Environment& env, const std::string& instance_id) {
    (void)instance_id;
    return Status::InvalidArgument("provider " + env.spec.provider + " starts nothing");
  }
  // Stops it (and everything it started). OK when it is gone already.
  virtual Status Delete(const env::Environment&, const env::Instance&) { return Status::Ok(); }
  // Whether it still exists; nullopt when the provider cannot tell (heartbeats decide then).
  virtual std::optional<bool> Alive(const env::Environment&, const env::Instance&) {
    return std::nullopt;
  }
  // The provider ids that exist now; nullopt when it cannot list for `env`.
  virtual std::optional<Result<std::set<std::string>>> List(const env::Environment&) {
    return std::nullopt;
  }
  // Group mode: the group's size is `desired` (the capacity resolved for its cloud/region).
  virtual Status SetCapacity(const env::Environment& env, int64_t desired) {
    (void)desired;
    return Status::InvalidArgument("provider " + env.spec.provider + " sizes no group");
  }
  // Called when something it watches changed (an agent exited): the controller looks at once.
  virtual void SetOnChange(std::function<void()>) {}
  // The URL agents join (known once the server listens).
  virtual void SetServerUrl(const std::string&) {}
  // Stops what it runs on this host and should not outlive `live(id)` (false: no longer a live
  // instance; nullopt: cannot tell, keep it).
  virtual void Sweep(const std::function<std::optional<bool>(const std::string& id)>&) {}
  // The server stops and asked its local instances to stop with it.
  virtual void StopAll() {}
};

// The providers a server can run, by name.
class ProviderRegistry {
 public:
  // Adds `p`, replacing one of the same name.
  void Add(std::shared_ptr<Provider> p) { by_name_[std::string(p->Name())] = std::move(p); }
  Provider* Find(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : it->second.get();
  }
  template <class F>
  void ForEach(F&& f) const {
    for (const auto& [name, p] : by_name_) f(*p);
  }

 private:
  std::map<std::string, std::shared_ptr<Provider>> by_name_;
};

class StaticProvider final : public Provider {
 public:
  std::string_view Name() const override { return "static"; }
  Mode ModeFor(const env::Environment&) const override { return Mode::kJoin; }
};

}  // namespace drover::fleet
