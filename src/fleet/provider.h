#pragma once
// How instances come to exist (docs/fleet.md). The controller asks a provider to start and stop
// instances and whether one still exists; the instance's agent then joins by itself.
#include <optional>
#include <string>

#include "common/status.h"
#include "env/environments.h"

namespace drover::fleet {

struct Started {
  std::string provider_id;
  std::string address;  // host:port where its service listens ("" when none)
  std::string data;     // JSON the provider needs to find it again
};

class Provider {
 public:
  virtual ~Provider() = default;
  // False for `static`: nothing to start or stop; agents join by themselves.
  virtual bool StartsInstances() const = 0;
  // Starts instance `instance_id` of `env`, whose agent joins with the environment's token.
  virtual Result<Started> Create(const env::Environment& env, const std::string& instance_id) = 0;
  // Stops it (and everything it started). OK when it is gone already.
  virtual Status Delete(const env::Environment& env, const env::Instance& inst) = 0;
  // Whether it still exists; nullopt when the provider cannot tell (heartbeats decide then).
  virtual std::optional<bool> Alive(const env::Environment& env, const env::Instance& inst) = 0;
};

class StaticProvider final : public Provider {
 public:
  bool StartsInstances() const override { return false; }
  Result<Started> Create(const env::Environment&, const std::string&) override {
    return Status::InvalidArgument("the static provider starts nothing");
  }
  Status Delete(const env::Environment&, const env::Instance&) override { return Status::Ok(); }
  std::optional<bool> Alive(const env::Environment&, const env::Instance&) override {
    return std::nullopt;
  }
};

}  // namespace drover::fleet
