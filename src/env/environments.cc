#include "env/environments.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>

#include "common/json.h"
#include "common/random.h"
#include "control/values.h"
#include "env/rows.h"
#include "store/lease.h"

namespace drover::env {

void EnvironmentService::Put(std::string tenant, std::string name, EnvironmentSpec spec,
                             std::function<void(Result<std::pair<Environment, Written>>)> done) {
  struct Op {
    Environment env;
    std::string agent_vars;
    Written written = Written::kCreated;
    std::function<void(Result<std::pair<Environment, Written>>)> done;
  };
  auto op = std::make_shared<Op>();
  op->env.tenant = std::move(tenant);
  op->env.name = std::move(name);
  op->env.spec_json = SpecToJson(spec);
  op->agent_vars = AgentVarsToJson(spec.agent_vars);
  op->env.spec = std::move(spec);
  op->env.updated_at_ms = ToUnixMillis(clock_.Now());
  std::string new_token = "djt_" + RandomBase64Url(32);
  op->done = std::move(done);
  store_.Write(
      [op, new_token](store::Tx& tx) -> Status {
        auto& e = op->env;
        std::optional<Environment> old;
        DROVER_RETURN_IF_ERROR(tx.Query(std::string(kEnvColumns) + " WHERE tenant = ? AND name = ?",
                                        {e.tenant, e.name},
                                        [&](const store::Row& r) { old = ReadEnvironment(r); }));
        if (old && old->spec_json == e.spec_json) {
          // The same spec again (an apply re-run): nothing to write, nobody to wake.
          op->written = Written::kUnchanged;
          e = std::move(*old);
          return Status::Ok();
        }
        op->written = old ? Written::kUpdated : Written::kCreated;
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        e.modify_index = *idx;
        if (old) {
          e.create_index = old->create_index;
          e.created_at_ms = old->created_at_ms;
          e.join_token = old->join_token;
          // A new capacity in the spec ends a `scale` override; anything else keeps it.
          bool capacity_changed = old->spec.capacity != e.spec.capacity;
          e.scale_capacity = capacity_changed ? std::nullopt : old->scale_capacity;
          DROVER_RETURN_IF_ERROR(
              tx.Exec("UPDATE environments SET spec = ?, agent_vars = ?, modify_index = ?,"
                      " updated_at = ?, scale_capacity = ? WHERE tenant = ? AND name = ?",
                      {e.spec_json, op->agent_vars, *idx, e.updated_at_ms,
                       e.scale_capacity ? store::Param(std::string_view(*e.scale_capacity))
                                        : store::Param(nullptr),
                       e.tenant, e.name})
                  .status());
        } else {
          e.create_index = *idx;
          e.created_at_ms = e.updated_at_ms;
          e.join_token = new_token;
          DROVER_RETURN_IF_ERROR(
              tx.Exec("INSERT INTO environments (tenant, name, spec, agent_vars, join_token,"
                      " create_index, modify_index, created_at, updated_at)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      {e.tenant, e.name, e.spec_json, op->agent_vars, e.join_token, *idx, *idx,
                       e.created_at_ms, e.updated_at_ms})
                  .status());
        }
        if (!old || old->spec_json != e.spec_json) {
          DROVER_RETURN_IF_ERROR(
              AddEvent(tx, e.tenant, e.name, *idx, "", old ? "updated" : "created",
                       old ? "spec changed" : "environment created", e.updated_at_ms));
        }
        DROVER_RETURN_IF_ERROR(tx.Notify(kTopic));
        return tx.Notify("variables");  // the agent: block is part of the cc-a-* view
      },
      [op](Status s) {
        if (!s.ok()) return op->done(s);
        op->done(std::make_pair(std::move(op->env), op->written));
      });
}

Result<Environment> EnvironmentService::Get(const std::string& tenant, const std::string& name) {
  std::optional<Environment> found;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kEnvColumns) + " WHERE tenant = ? AND name = ?", {tenant, name},
                    [&](const store::Row& r) { found = ReadEnvironment(r); });
  });
  if (!s.ok()) return s;
  if (!found) return NoEnvironment(name);
  return std::move(*found);
}

Result<Page<Environment>> EnvironmentService::List(const std::string& tenant,
                                                   const std::string& cursor, int limit) {
  Page<Environment> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        std::string(kEnvColumns) + " WHERE tenant = ? AND name > ? ORDER BY name LIMIT ?",
        {tenant, cursor, int64_t{limit + 1}},
        [&](const store::Row& r) { page.items.push_back(ReadEnvironment(r)); });
  });
  if (!s.ok()) return s;
  page.Trim(limit, [](const auto& last) { return last.name; });
  return page;
}

void EnvironmentService::Delete(std::string tenant, std::string name,
                                std::function<void(Status)> done) {
  store_.Write(
      [tenant, name](store::Tx& tx) -> Status {
        auto n = tx.Exec("DELETE FROM environments WHERE tenant = ? AND name = ?", {tenant, name});
        if (!n.ok()) return n.status();
        if (*n == 0) return NoEnvironment(name);
        for (std::string_view sql : {
                 "DELETE FROM runs WHERE instance IN (SELECT id FROM instances WHERE tenant = ?"
                 " AND environment = ?)",
                 "DELETE FROM instances WHERE tenant = ? AND environment = ?",
                 "DELETE FROM environment_events WHERE tenant = ? AND environment = ?",
                 "DELETE FROM api_keys WHERE tenant = ? AND environment = ?",
             }) {
          DROVER_RETURN_IF_ERROR(tx.Exec(sql, {tenant, name}).status());
        }
        DROVER_RETURN_IF_ERROR(RecordChange(tx, tenant, "environment", name, "deleted", name, ""));
        DROVER_RETURN_IF_ERROR(tx.Notify(kTopic));
        DROVER_RETURN_IF_ERROR(tx.Notify(auth::kTopic));  // its agent keys stop working everywhere
        DROVER_RETURN_IF_ERROR(tx.Notify("variables"));
        return tx.NextIndex().status();
      },
      [this, done = std::move(done)](Status s) {
        if (s.ok()) keys_.Revoked();
        done(std::move(s));
      });
}

Result<std::map<std::string, std::string>> EnvironmentService::AgentVars(const std::string& tenant,
                                                                         const std::string& name) {
  std::map<std::string, std::string> vars;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT agent_vars FROM environments WHERE tenant = ? AND name = ?",
                    {tenant, name},
                    [&](const store::Row& r) { vars = AgentVarsFromJson(r.Text(0)); });
  });
  if (!s.ok()) return s;
  return vars;
}

void EnvironmentService::Scale(std::string tenant, std::string name, std::string capacity,
                               std::function<void(Result<Environment>)> done) {
  auto parsed = control::ParseCapacity(capacity);
  if (!parsed.ok()) return done(Status::Validation({{"capacity", parsed.status().message()}}));
  if (parsed->clouds.empty() && !parsed->all.count) {
    return done(Status::Validation({{"capacity", "must be a whole number or a capacity map"}}));
  }
  auto out = std::make_shared<Environment>();
  int64_t now = ToUnixMillis(clock_.Now());
  store_.Write(
      [out, tenant, name, capacity, now](store::Tx& tx) -> Status {
        std::optional<Environment> e;
        DROVER_RETURN_IF_ERROR(tx.Query(std::string(kEnvColumns) + " WHERE tenant = ? AND name = ?",
                                        {tenant, name},
                                        [&](const store::Row& r) { e = ReadEnvironment(r); }));
        if (!e) return NoEnvironment(name);
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        DROVER_RETURN_IF_ERROR(
            tx.Exec("UPDATE environments SET scale_capacity = ?, modify_index = ?, updated_at = ?"
                    " WHERE tenant = ? AND name = ?",
                    {capacity, *idx, now, tenant, name})
                .status());
        DROVER_RETURN_IF_ERROR(
            AddEvent(tx, tenant, name, *idx, "", "scaled",
                     fmt::format("capacity {} (was {})", capacity, e->capacity()), now));
        e->scale_capacity = capacity;
        e->modify_index = *idx;
        e->updated_at_ms = now;
        *out = std::move(*e);
        return tx.Notify(kTopic);
      },
      [out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*out));
      });
}

void EnvironmentService::Touch(std::string tenant, std::string name,
                               std::function<void(Status)> done) {
  int64_t now = ToUnixMillis(clock_.Now());
  store_.Write(
      [tenant = std::move(tenant), name = std::move(name), now](store::Tx& tx) -> Status {
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        auto n = tx.Exec(
            "UPDATE environments SET active_at = ?, modify_index = ? WHERE tenant = ? AND name = ?",
            {now, *idx, tenant, name});
        if (!n.ok()) return n.status();
        if (*n == 0) return NoEnvironment(name);
        return tx.Notify(kTopic);
      },
      std::move(done));
}

void EnvironmentService::Wake(std::string tenant, std::string name, std::string reason,
                              std::function<void(Result<Environment>)> done) {
  auto out = std::make_shared<Environment>();
  int64_t now = ToUnixMillis(clock_.Now());
  store_.Write(
      [out, tenant, name, reason = std::move(reason), now](store::Tx& tx) -> Status {
        std::optional<Environment> e;
        DROVER_RETURN_IF_ERROR(tx.Query(std::string(kEnvColumns) + " WHERE tenant = ? AND name = ?",
                                        {tenant, name},
                                        [&](const store::Row& r) { e = ReadEnvironment(r); }));
        if (!e) return NoEnvironment(name);
        if (e->capacity() != "0") {  // awake already (another request woke it)
          *out = std::move(*e);
          return Status::Ok();
        }
        if (e->spec.capacity == "0") {
          return Status::Unavailable(fmt::format(
              "environment '{}' has capacity 0 in its spec: there is nothing to wake", name));
        }
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        DROVER_RETURN_IF_ERROR(tx.Exec("UPDATE environments SET scale_capacity = NULL,"
                                       " modify_index = ?, updated_at = ?, active_at = ?"
                                       " WHERE tenant = ? AND name = ?",
                                       {*idx, now, now, tenant, name})
                                   .status());
        DROVER_RETURN_IF_ERROR(
            AddEvent(tx, tenant, name, *idx, "", "woken",
                     fmt::format("capacity {} again: {}", e->spec.capacity, reason), now));
        e->scale_capacity.reset();
        e->modify_index = *idx;
        e->updated_at_ms = e->active_at_ms = now;
        *out = std::move(*e);
        return tx.Notify(kTopic);
      },
      [out, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*out));
      });
}

Result<std::vector<EnvironmentService::Version>> EnvironmentService::Versions() {
  std::vector<Version> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT tenant, name, modify_index FROM environments", {},
                    [&](const store::Row& r) {
                      out.push_back({std::string(r.Text(0)), std::string(r.Text(1)), r.Int(2)});
                    });
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<Environment>> EnvironmentService::AllEnvironments() {
  std::vector<Environment> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kEnvColumns) + " ORDER BY tenant, name", {},
                    [&](const store::Row& r) { out.push_back(ReadEnvironment(r)); });
  });
  if (!s.ok()) return s;
  return out;
}

Status EnvironmentService::SetCapacity(const Environment& env, const std::string& capacity,
                                       const std::string& kind, const std::string& reason,
                                       const store::Lease* lease) {
  return store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    auto at = ControllerWrite(tx, lease);
    if (!at.ok()) return at.status();
    auto [now, idx] = *at;
    // Only if nobody changed the environment since the controller read it.
    auto n = tx.Exec(
        "UPDATE environments SET scale_capacity = ?, modify_index = ?, updated_at = ?"
        " WHERE tenant = ? AND name = ? AND modify_index = ?",
        {capacity, idx, now, env.tenant, env.name, env.modify_index});
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::Conflict("the environment changed meanwhile");
    DROVER_RETURN_IF_ERROR(AddEvent(tx, env.tenant, env.name, idx, "", kind, reason, now));
    return tx.Notify(kTopic);
  });
}

void InstanceTally::Add(InstanceState state) {
  if (state == InstanceState::kRunning) ++running;
  if (state == InstanceState::kUnhealthy || state == InstanceState::kFailed) ++broken;
  if (state != InstanceState::kTerminated) ++live;
}

Phase PhaseOf(bool spec_error, std::optional<int64_t> desired, const InstanceTally& t) {
  if (spec_error) return Phase::kDegraded;  // nothing acts on a spec that does not parse
  if (desired && *desired == 0 && t.live == 0) return Phase::kStopped;
  if (desired && t.running == *desired && t.broken == 0) return Phase::kReady;
  if (t.broken > 0) return Phase::kDegraded;
  if (t.live == 0) return Phase::kPending;
  return Phase::kScaling;
}

Result<EnvironmentService::Counts> EnvironmentService::Count(int64_t now_ms) {
  auto envs = AllEnvironments();
  if (!envs.ok()) return envs.status();
  Counts c;
  std::map<std::pair<std::string, std::string>, InstanceTally> tallies;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT tenant, environment, state FROM instances", {},
                    [&](const store::Row& r) {
                      auto state = ParseInstanceState(r.Text(2)).value_or(InstanceState::kFailed);
                      tallies[{r.String(0), r.String(1)}].Add(state);
                      ++c.instances_by_state[state];
                    });
  });
  if (!s.ok()) return s;
  for (const auto& e : *envs) {
    auto phase =
        PhaseOf(!e.spec_error.empty(), CapacityOf(e, now_ms).desired, tallies[{e.tenant, e.name}]);
    ++c.environments_by_phase[phase];
    c.phases[{e.tenant, e.name}] = phase;
    c.broken[{e.tenant, e.name}] = tallies[{e.tenant, e.name}].broken;
  }
  return c;
}

DesiredCapacity EnvironmentService::CapacityOf(const Environment& e, int64_t now_ms) const {
  DesiredCapacity d{e.capacity(), e.scale_capacity ? "scale" : "spec", std::nullopt, std::nullopt};
  if (holds_) {
    HoldView v = holds_(e.tenant, e.name, now_ms);
    d.next_change_ms = v.next_change_ms;
    if (v.hold) {
      d.capacity = v.hold->capacity;
      d.source = v.hold->source;
    }
  }
  // The group's cloud/region: an exec group's, else the provider's name as the cloud.
  if (auto cap = control::ParseCapacity(d.capacity); cap.ok()) {
    d.desired = e.spec.exec
                    ? control::ResolveCapacity(*cap, e.spec.exec->cloud, e.spec.exec->region)
                    : control::ResolveCapacity(*cap, e.spec.provider, "");
  }
  return d;
}

std::chrono::milliseconds EnvironmentService::HeartbeatInterval(const std::string& tenant,
                                                                const std::string& name) {
  constexpr auto kFresh = std::chrono::seconds(5);
  auto now = std::chrono::steady_clock::now();
  auto key = std::make_pair(tenant, name);
  {
    std::lock_guard lock(interval_mu_);
    auto it = intervals_.find(key);
    if (it != intervals_.end() && now - it->second.read_at < kFresh) return it->second.interval;
  }
  auto e = Get(tenant, name);
  auto interval = e.ok() ? e->spec.health.heartbeat_interval : HealthSpec{}.heartbeat_interval;
  std::lock_guard lock(interval_mu_);
  if (intervals_.size() > 100000) intervals_.clear();  // bounded: deleted environments go too
  intervals_[key] = {interval, now};
  return interval;
}

Result<int64_t> EnvironmentService::Now() {
  int64_t now = 0;
  Status s = store_.Read([&](store::Tx& tx) {
    auto n = tx.NowMillis();
    if (!n.ok()) return n.status();
    now = *n;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return now;
}

}  // namespace drover::env
