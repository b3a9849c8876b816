#include "env/instances.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>

#include "common/json.h"
#include "common/random.h"
#include "control/values.h"
#include "env/rows.h"
#include "store/lease.h"

namespace drover::env {

namespace {

// What a heartbeat says, to recognise the same heartbeat again (HeartbeatBuffer::Quiet).
std::string Fingerprint(const Heartbeat& hb) {
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", hb.agent_version, hb.hostname, hb.facts_json,
                     hb.current_run_json, hb.skipped_runs);
}

}  // namespace

void InstanceService::Join(std::string name, std::string token, std::string hostname,
                           std::string facts_json, std::string instance_id,
                           std::function<void(Result<Joined>)> done) {
  // Which environment: the one of this name whose token matches (names repeat across tenants).
  std::optional<Environment> env;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kEnvColumns) + " WHERE name = ?", {name}, [&](const store::Row& r) {
      Environment e = ReadEnvironment(r);
      if (ConstantTimeEqual(e.join_token, token)) env = std::move(e);
    });
  });
  if (!s.ok()) return done(s);
  if (!env) return done(Status::Unauthenticated("invalid join token for this environment"));
  auto joined = std::make_shared<Joined>();
  bool precreated = !instance_id.empty();
  joined->instance_id = precreated ? instance_id : "i-" + RandomHex(8);
  joined->agent_key = keys_.NewSecret();
  joined->environment = std::move(*env);
  int64_t now = ToUnixMillis(clock_.Now());
  store_.Write(
      [joined, hostname = std::move(hostname), facts = std::move(facts_json), now, precreated,
       token = std::move(token)](store::Tx& tx) -> Status {
        const auto& e = joined->environment;
        // The token is checked again inside the transaction: a delete or re-create in between
        // must not let the join through.
        std::string current;
        DROVER_RETURN_IF_ERROR(
            tx.Query("SELECT join_token FROM environments WHERE tenant = ? AND name = ?",
                     {e.tenant, e.name}, [&](const store::Row& r) { current = r.String(0); }));
        if (current.empty() || !ConstantTimeEqual(current, token)) {
          return Status::Unauthenticated("invalid join token for this environment");
        }
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        if (precreated) {
          // An instance the controller started: the agent takes it over, once (a key is bound
          // to it only if none is yet).
          auto n = tx.Exec(
              "UPDATE instances SET hostname = ?, facts = ?, updated_at = ? WHERE id = ? AND"
              " tenant = ? AND environment = ? AND state IN ('pending', 'starting') AND NOT EXISTS"
              " (SELECT 1 FROM api_keys WHERE instance = ?)",
              {hostname, facts, now, joined->instance_id, e.tenant, e.name, joined->instance_id});
          if (!n.ok()) return n.status();
          if (*n == 0) {
            return Status::Conflict(
                fmt::format("instance '{}' is not a starting instance of this environment waiting "
                            "for its agent",
                            joined->instance_id));
          }
        } else {
          DROVER_RETURN_IF_ERROR(
              tx.Exec("INSERT INTO instances (id, tenant, environment, state, hostname, address,"
                      " provider_id, facts, agent_version, current_run, skipped_runs,"
                      " last_heartbeat, restarts, last_run_seq, created_at, updated_at)"
                      " VALUES (?, ?, ?, 'starting', ?, '', '', ?, '', NULL, 0, NULL, 0, 0, ?, ?)",
                      {joined->instance_id, e.tenant, e.name, hostname, facts, now, now})
                  .status());
        }
        auth::KeyRecord key{"k_" + RandomHex(8),
                            "agent-" + joined->instance_id,
                            http::Role::kAgent,
                            e.tenant,
                            now,
                            std::nullopt,
                            std::nullopt,
                            e.name,
                            joined->instance_id};
        DROVER_RETURN_IF_ERROR(auth::KeyService::Insert(tx, key, joined->agent_key));
        DROVER_RETURN_IF_ERROR(AddEvent(
            tx, e.tenant, e.name, *idx, joined->instance_id, "joined",
            hostname.empty() ? "agent joined" : fmt::format("agent on {} joined", hostname), now));
        return tx.Notify(kTopic);
      },
      [joined, done = std::move(done)](Status s) {
        if (!s.ok()) return done(s);
        done(std::move(*joined));
      });
}

Result<Instance> InstanceService::InstanceFor(const http::Principal& caller,
                                              const std::string& id) {
  std::optional<Instance> found;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kInstanceColumns) + " WHERE i.id = ?", {id},
                    [&](const store::Row& r) { found = ReadInstance(r); });
  });
  if (!s.ok()) return s;
  if (found) found->last_heartbeat_ms = beats_.Overlay(found->id, found->last_heartbeat_ms);
  if (!found || !caller.CanSeeTenant(found->tenant)) {
    return Status::NotFound(fmt::format("no instance '{}'", id));
  }
  if (caller.role == http::Role::kAgent && !caller.instance.empty() && caller.instance != id) {
    return Status::PermissionDenied(
        fmt::format("this agent key acts for instance '{}' only", caller.instance));
  }
  return std::move(*found);
}

Result<std::optional<InstanceState>> InstanceService::StateOf(const std::string& id) {
  std::optional<InstanceState> state;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT state FROM instances WHERE id = ?", {id}, [&](const store::Row& r) {
      state = ParseInstanceState(r.Text(0)).value_or(InstanceState::kFailed);
    });
  });
  if (!s.ok()) return s;
  return state;
}

Result<std::vector<Instance>> InstanceService::Instances(const std::string& tenant,
                                                         const std::string& env, bool terminated) {
  std::vector<Instance> out;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kInstanceColumns) +
                        " WHERE i.tenant = ? AND i.environment = ? AND (? = 1 OR i.state <>"
                        " 'terminated') ORDER BY i.created_at, i.id",
                    {tenant, env, int64_t{terminated}},
                    [&](const store::Row& r) { out.push_back(ReadInstance(r)); });
  });
  for (auto& i : out) i.last_heartbeat_ms = beats_.Overlay(i.id, i.last_heartbeat_ms);
  if (!s.ok()) return s;
  return out;
}

void InstanceService::RecordHeartbeat(const http::Principal& caller, const std::string& id,
                                      Heartbeat hb,
                                      std::function<void(Result<std::chrono::milliseconds>)> done) {
  auto answer = [this, done](const std::string& tenant, const std::string& env) {
    done(environments_.HeartbeatInterval(tenant, env));
  };
  // The same heartbeat again from the instance's own key: no store read at all.
  if (caller.role == http::Role::kAgent && caller.instance == id &&
      beats_.Quiet(id, Fingerprint(hb))) {
    return answer(caller.tenant, caller.environment);
  }
  auto inst = InstanceFor(caller, id);
  if (!inst.ok()) return done(inst.status());
  std::string tenant = inst->tenant, env = inst->environment;
  WriteHeartbeat(std::move(*inst), std::move(hb),
                 [answer, done, tenant = std::move(tenant), env = std::move(env)](Status s) {
                   if (!s.ok()) return done(s);
                   answer(tenant, env);
                 });
}

void InstanceService::WriteHeartbeat(Instance inst, Heartbeat hb,
                                     std::function<void(Status)> done) {
  // No news (running, and everything as reported before): only the time moves, buffered.
  bool same =
      inst.state == InstanceState::kRunning &&
      (hb.agent_version.empty() || hb.agent_version == inst.agent_version) &&
      (hb.hostname.empty() || hb.hostname == inst.hostname) &&
      (hb.facts_json.empty() || hb.facts_json == inst.facts_json) &&
      hb.current_run_json == inst.current_run_json && hb.skipped_runs == inst.skipped_runs &&
      (hb.run_mode.empty() || (hb.run_mode == (inst.run_mode.empty() ? "daemon" : inst.run_mode) &&
                               hb.run_interval_ms == inst.run_interval_ms));
  if (same) {
    beats_.Record(inst.id, Fingerprint(hb));
    return done(Status::Ok());
  }
  store_.Write(
      [inst = std::move(inst), hb = std::move(hb)](store::Tx& tx) -> Status {
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        std::string state;
        DROVER_RETURN_IF_ERROR(tx.Query("SELECT state FROM instances WHERE id = ?", {inst.id},
                                        [&](const store::Row& r) { state = r.String(0); }));
        if (state.empty()) return Status::NotFound(fmt::format("no instance '{}'", inst.id));
        auto was = ParseInstanceState(state);
        if (!was || *was == InstanceState::kTerminating || *was == InstanceState::kTerminated ||
            *was == InstanceState::kFailed) {
          return Status::Conflict(fmt::format("instance '{}' is {}", inst.id, state));
        }
        bool up = *was != InstanceState::kRunning;
        std::string_view current =
            hb.current_run_json.empty() ? std::string_view() : hb.current_run_json;
        store::Param current_param = hb.current_run_json.empty() ? store::Param(nullptr) : current;
        DROVER_RETURN_IF_ERROR(
            tx.Exec("UPDATE instances SET state = 'running', last_heartbeat = ?,"
                    " agent_version = CASE WHEN ? = '' THEN agent_version ELSE ? END,"
                    " hostname = CASE WHEN ? = '' THEN hostname ELSE ? END,"
                    " facts = CASE WHEN ? = '' THEN facts ELSE ? END,"
                    " current_run = ?, skipped_runs = ?, updated_at = ? WHERE id = ?",
                    {*now, hb.agent_version, hb.agent_version, hb.hostname, hb.hostname,
                     hb.facts_json, hb.facts_json, current_param, hb.skipped_runs, *now, inst.id})
                .status());
        if (!hb.run_mode.empty()) {
          std::string_view mode = hb.run_mode == "once" ? "once" : "";
          DROVER_RETURN_IF_ERROR(
              tx.Exec("UPDATE instances SET run_mode = ?, run_interval_ms = ? WHERE id = ?",
                      {mode.empty() ? store::Param(nullptr) : store::Param(mode),
                       hb.run_interval_ms, inst.id})
                  .status());
        }
        if (!up) return Status::Ok();
        // A state change is news: it takes an index, an event and a notification.
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        DROVER_RETURN_IF_ERROR(AddEvent(tx, inst.tenant, inst.environment, *idx, inst.id, "running",
                                        fmt::format("heartbeat (was {})", state), *now));
        return tx.Notify(kTopic);
      },
      std::move(done));
}

std::function<void(Status)> InstanceService::InstanceGone(std::string id,
                                                          std::function<void(Status)> done) {
  // Its buffered heartbeat and cached key must not outlive it on this server (other servers
  // drop their key caches on the notification).
  return [this, id = std::move(id), done = std::move(done)](Status s) {
    if (s.ok()) {
      beats_.Forget(id);
      keys_.Revoked();
    }
    done(std::move(s));
  };
}

void InstanceService::Leave(Instance inst, std::string reason, std::function<void(Status)> done) {
  std::string id = inst.id;
  store_.Write(
      [inst = std::move(inst), reason = std::move(reason)](store::Tx& tx) -> Status {
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        // A `terminating` instance is the controller's to finish, with its own reason (scaled
        // down, replaced): its agent stopping is the provider doing its part.
        auto n = tx.Exec(
            "UPDATE instances SET state = 'terminated', state_reason = ?, current_run = NULL,"
            " updated_at = ? WHERE id = ? AND state IN ('pending', 'starting', 'running',"
            " 'unhealthy')",
            {reason, *now, inst.id});
        if (!n.ok()) return n.status();
        DROVER_RETURN_IF_ERROR(auth::KeyService::RevokeInstance(tx, inst.id));
        if (*n == 0) return Status::Ok();  // terminating, gone or failed: nothing to record
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        DROVER_RETURN_IF_ERROR(
            AddEvent(tx, inst.tenant, inst.environment, *idx, inst.id, "left", reason, *now));
        return tx.Notify(kTopic);
      },
      InstanceGone(std::move(id), std::move(done)));
}

void InstanceService::Forget(Instance inst, std::function<void(Status)> done) {
  std::string id = inst.id;
  store_.Write(
      [inst = std::move(inst)](store::Tx& tx) -> Status {
        std::string state, spec;
        DROVER_RETURN_IF_ERROR(tx.Query(
            "SELECT i.state, e.spec FROM instances i JOIN environments e ON e.tenant = i.tenant"
            " AND e.name = i.environment WHERE i.id = ?",
            {inst.id}, [&](const store::Row& r) {
              state = r.String(0);
              spec = r.String(1);
            }));
        if (state.empty()) return Status::NotFound(fmt::format("no instance '{}'", inst.id));
        bool live =
            state != Name(InstanceState::kTerminated) && state != Name(InstanceState::kFailed);
        boost::system::error_code ec;
        auto doc = boost::json::parse(spec, ec);
        bool started_by_provider = true;
        if (!ec && doc.is_object()) {
          const auto* p = doc.as_object().if_contains("provider");
          started_by_provider = !p || !p->is_string() || p->as_string() != "static";
        }
        if (live && started_by_provider) {
          return Status::Conflict(fmt::format(
              "instance '{}' is {} and its provider started it: scale the environment down (or "
              "let the controller replace it) instead of forgetting it",
              inst.id, state));
        }
        for (std::string_view sql :
             {"DELETE FROM runs WHERE instance = ?", "DELETE FROM instances WHERE id = ?"}) {
          DROVER_RETURN_IF_ERROR(tx.Exec(sql, {inst.id}).status());
        }
        DROVER_RETURN_IF_ERROR(auth::KeyService::RevokeInstance(tx, inst.id));
        auto now = tx.NowMillis();
        if (!now.ok()) return now.status();
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        DROVER_RETURN_IF_ERROR(AddEvent(tx, inst.tenant, inst.environment, *idx, inst.id,
                                        "forgotten", fmt::format("removed (was {})", state), *now));
        return tx.Notify(kTopic);
      },
      InstanceGone(std::move(id), std::move(done)));
}

Result<int64_t> InstanceService::PruneTerminated(int64_t retention_ms) {
  int64_t removed = 0;
  Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    int64_t before = *now - retention_ms;
    DROVER_RETURN_IF_ERROR(
        tx.Exec("DELETE FROM runs WHERE instance IN (SELECT id FROM instances WHERE state ="
                " 'terminated' AND updated_at < ?)",
                {before})
            .status());
    auto n =
        tx.Exec("DELETE FROM instances WHERE state = 'terminated' AND updated_at < ?", {before});
    if (!n.ok()) return n.status();
    removed = *n;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return removed;
}

Result<std::string> InstanceService::AddInstance(const Environment& env, int64_t restarts,
                                                 const std::string& reason,
                                                 const store::Lease* lease) {
  std::string id = "i-" + RandomHex(8);
  Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    auto at = ControllerWrite(tx, lease);
    if (!at.ok()) return at.status();
    auto [now, idx] = *at;
    DROVER_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO instances (id, tenant, environment, state, hostname, address,"
                " provider_id, facts, agent_version, current_run, skipped_runs, last_heartbeat,"
                " restarts, last_run_seq, created_at, updated_at, state_reason)"
                " VALUES (?, ?, ?, 'starting', '', '', '', '{}', '', NULL, 0, NULL, ?, 0, ?, ?, ?)",
                {id, env.tenant, env.name, restarts, now, now, reason})
            .status());
    DROVER_RETURN_IF_ERROR(AddEvent(tx, env.tenant, env.name, idx, id, "starting", reason, now));
    return tx.Notify(kTopic);
  });
  if (!s.ok()) return s;
  return id;
}

Status InstanceService::SetProviderInfo(const std::string& id, const std::string& provider_id,
                                        const std::string& address,
                                        const std::string& provider_data) {
  return store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    return tx
        .Exec("UPDATE instances SET provider_id = ?, address = ?, provider_data = ? WHERE id = ?",
              {provider_id, address, provider_data, id})
        .status();
  });
}

Result<bool> InstanceService::Transition(const Instance& inst, InstanceState to,
                                         const std::string& kind, const std::string& reason,
                                         const store::Lease* lease) {
  bool moved = false;
  Status s = store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    moved = false;
    if (lease) DROVER_RETURN_IF_ERROR(store::Leases::Fence(tx, *lease));
    auto now = tx.NowMillis();
    if (!now.ok()) return now.status();
    // Only from the state the caller saw: a heartbeat that came in between wins.
    auto n = tx.Exec(
        "UPDATE instances SET state = ?, state_reason = ?, updated_at = ? WHERE id = ? AND state = "
        "?",
        {Name(to), reason, *now, inst.id, Name(inst.state)});
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::Ok();
    moved = true;
    auto idx = tx.NextIndex();
    if (!idx.ok()) return idx.status();
    DROVER_RETURN_IF_ERROR(
        AddEvent(tx, inst.tenant, inst.environment, *idx, inst.id, kind, reason, *now));
    // A terminated instance's agent has nothing left to read or report.
    if (to == InstanceState::kTerminated)
      DROVER_RETURN_IF_ERROR(auth::KeyService::RevokeInstance(tx, inst.id));
    return tx.Notify(kTopic);
  });
  if (!s.ok()) return s;
  if (moved) beats_.Forget(inst.id);
  return moved;
}

}  // namespace drover::env
