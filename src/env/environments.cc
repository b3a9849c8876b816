#include "env/environments.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>

#include "common/json.h"
#include "common/random.h"
#include "control/values.h"
#include "events/change_log.h"
#include "store/lease.h"

namespace drover::env {
namespace {

// What a heartbeat says, to recognise the same heartbeat again (HeartbeatBuffer::Quiet).
std::string Fingerprint(const Heartbeat& hb) {
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", hb.agent_version, hb.hostname, hb.facts_json,
                     hb.current_run_json, hb.skipped_runs);
}

constexpr std::string_view kEnvColumns =
    "SELECT tenant, name, spec, join_token, create_index, modify_index, created_at, updated_at,"
    " scale_capacity FROM environments";

Environment ReadEnvironment(const store::Row& r) {
  Environment e;
  e.tenant = r.String(0);
  e.name = r.String(1);
  e.spec_json = r.String(2);
  e.join_token = r.String(3);
  e.create_index = r.Int(4);
  e.modify_index = r.Int(5);
  e.created_at_ms = r.Int(6);
  e.updated_at_ms = r.Int(7);
  if (!r.IsNull(8)) e.scale_capacity = r.String(8);
  // Stored specs were validated when written, but the rules may have changed since (or the row
  // been damaged): such a spec is reported, never silently replaced by defaults.
  boost::system::error_code ec;
  auto doc = boost::json::parse(e.spec_json, ec);
  if (ec) {
    e.spec_error = "the stored spec is not JSON: " + ec.message();
  } else if (auto spec = ParseEnvironmentDocument(doc, e.name); spec.ok()) {
    e.spec = std::move(*spec);
  } else {
    e.spec_error = "the stored spec is no longer valid: " + spec.status().ToString();
  }
  return e;
}

constexpr std::string_view kInstanceColumns =
    "SELECT i.id, i.tenant, i.environment, i.state, i.hostname, i.address, i.provider_id,"
    " i.facts, i.agent_version, i.current_run, i.skipped_runs, i.last_heartbeat, i.restarts,"
    " i.created_at, r.seq, r.commit_sha, r.status, r.main_exit, r.started_at, r.finished_at,"
    " i.provider_data, i.state_reason, i.updated_at, i.run_mode, i.run_interval_ms"
    " FROM instances i LEFT JOIN runs r ON r.instance = i.id AND r.seq = i.last_run_seq";

Instance ReadInstance(const store::Row& r) {
  Instance i;
  i.id = r.String(0);
  i.tenant = r.String(1);
  i.environment = r.String(2);
  i.state = r.String(3);
  i.hostname = r.String(4);
  i.address = r.String(5);
  i.provider_id = r.String(6);
  i.facts_json = r.String(7);
  i.agent_version = r.String(8);
  if (!r.IsNull(9)) i.current_run_json = r.String(9);
  i.skipped_runs = r.Int(10);
  if (!r.IsNull(11)) i.last_heartbeat_ms = r.Int(11);
  i.restarts = r.Int(12);
  i.created_at_ms = r.Int(13);
  if (!r.IsNull(14)) {
    LastRun lr;
    lr.seq = r.Int(14);
    lr.commit = r.String(15);
    lr.status = r.String(16);
    if (!r.IsNull(17)) lr.main_exit = r.Int(17);
    lr.duration_ms = r.Int(19) - r.Int(18);
    lr.finished_at_ms = r.Int(19);
    i.last_run = lr;
  }
  if (!r.IsNull(20)) i.provider_data = r.String(20);
  if (!r.IsNull(21)) i.state_reason = r.String(21);
  i.updated_at_ms = r.IsNull(22) ? i.created_at_ms : r.Int(22);
  if (!r.IsNull(23)) i.run_mode = r.String(23);
  if (!r.IsNull(24)) i.run_interval_ms = r.Int(24);
  return i;
}

constexpr std::string_view kRunColumns =
    "SELECT seq, run_id, var_index, commit_sha, status, reason, pre_exit, main_exit, post_exit,"
    " started_at, finished_at, log_tail, received_at FROM runs";

Run ReadRun(const store::Row& r) {
  Run run;
  run.seq = r.Int(0);
  auto& rep = run.report;
  rep.run_id = r.String(1);
  rep.var_index = r.Int(2);
  rep.commit = r.String(3);
  rep.status = r.String(4);
  rep.reason = r.String(5);
  if (!r.IsNull(6)) rep.pre_exit = r.Int(6);
  if (!r.IsNull(7)) rep.main_exit = r.Int(7);
  if (!r.IsNull(8)) rep.post_exit = r.Int(8);
  rep.started_at_ms = r.Int(9);
  rep.finished_at_ms = r.Int(10);
  rep.log_tail = r.String(11);
  run.received_at_ms = r.Int(12);
  return run;
}

// A change record with {"environment": ..., "reason": ...} as its summary.
Status RecordChange(store::Tx& tx, const std::string& tenant, std::string_view kind,
                    const std::string& name, std::string_view op, const std::string& env,
                    const std::string& reason) {
  std::string summary = "{\"environment\":";
  AppendJsonString(summary, env);
  if (!reason.empty()) {
    summary += ",\"reason\":";
    AppendJsonString(summary, reason);
  }
  summary += '}';
  return events::Record(tx, {tenant, std::string(kind), name, std::string(op), summary});
}

store::Param OptInt(const std::optional<int64_t>& v) {
  if (!v) return nullptr;
  return *v;
}

// An environment's event (its own history, `drover env events`) is also a change record of
// the environment or the instance (the change feed and the audit log).
Status AddEvent(store::Tx& tx, const std::string& tenant, const std::string& env, int64_t seq,
                const std::string& instance, std::string_view kind, const std::string& reason,
                int64_t at) {
  DROVER_RETURN_IF_ERROR(
      tx.Exec(
            "INSERT INTO environment_events (tenant, environment, seq, instance, kind, reason, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            {tenant, env, seq, instance, kind, reason, at})
          .status());
  return RecordChange(tx, tenant, instance.empty() ? "environment" : "instance",
                      instance.empty() ? env : instance, kind, env, reason);
}

Result<int64_t> ParseCursor(const std::string& cursor) {
  if (cursor.empty()) return int64_t{0};
  int64_t n = 0;
  for (char c : cursor) {
    if (c < '0' || c > '9' || n > 1'000'000'000'000'000LL) {
      return Status::InvalidArgument("query parameter 'cursor' is not a cursor this server issued");
    }
    n = n * 10 + (c - '0');
  }
  return n;
}

// The start of a fleet-controller write: the lease fence (when given), then the database clock
// and a change index.
Result<std::pair<int64_t, int64_t>> ControllerWrite(store::Tx& tx, const store::Lease* lease) {
  if (lease) DROVER_RETURN_IF_ERROR(store::Leases::Fence(tx, *lease));
  auto now = tx.NowMillis();
  if (!now.ok()) return now.status();
  auto idx = tx.NextIndex();
  if (!idx.ok()) return idx.status();
  return std::make_pair(*now, *idx);
}

Status NoEnvironment(const std::string& name) {
  return Status::NotFound(fmt::format("no environment '{}'", name));
}

}  // namespace

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
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.pop_back();
    page.next_cursor = page.items.back().name;
  }
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

void EnvironmentService::Join(std::string name, std::string token, std::string hostname,
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

Result<Instance> EnvironmentService::InstanceFor(const http::Principal& caller,
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

Result<std::optional<std::string>> EnvironmentService::InstanceState(const std::string& id) {
  std::optional<std::string> state;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT state FROM instances WHERE id = ?", {id},
                    [&](const store::Row& r) { state = r.String(0); });
  });
  if (!s.ok()) return s;
  return state;
}

Result<std::vector<Instance>> EnvironmentService::Instances(const std::string& tenant,
                                                            const std::string& env,
                                                            bool terminated) {
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

bool EnvironmentService::QuietHeartbeat(const http::Principal& caller, const std::string& id,
                                        const Heartbeat& hb) {
  return caller.role == http::Role::kAgent && caller.instance == id &&
         beats_.Quiet(id, Fingerprint(hb));
}

void EnvironmentService::RecordHeartbeat(Instance inst, Heartbeat hb,
                                         std::function<void(Status)> done) {
  // No news (running, and everything as reported before): only the time moves, buffered.
  bool same =
      inst.state == "running" &&
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
        if (state == "terminating" || state == "terminated" || state == "failed") {
          return Status::Conflict(fmt::format("instance '{}' is {}", inst.id, state));
        }
        bool up = state != "running";
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

void EnvironmentService::RecordRun(Instance inst, RunReport report,
                                   std::function<void(Result<std::pair<Run, bool>>)> done) {
  struct Op {
    Run run;
    bool created = false;
    std::function<void(Result<std::pair<Run, bool>>)> done;
  };
  auto op = std::make_shared<Op>();
  op->run.report = std::move(report);
  op->run.received_at_ms = ToUnixMillis(clock_.Now());
  op->done = std::move(done);
  store_.Write(
      [op, inst = std::move(inst)](store::Tx& tx) -> Status {
        auto& rep = op->run.report;
        std::optional<Run> existing;
        DROVER_RETURN_IF_ERROR(
            tx.Query(std::string(kRunColumns) + " WHERE instance = ? AND run_id = ?",
                     {inst.id, rep.run_id}, [&](const store::Row& r) { existing = ReadRun(r); }));
        op->created = !existing;
        if (existing) {
          op->run = std::move(*existing);
          return Status::Ok();
        }
        auto seq = tx.QueryInt("SELECT last_run_seq FROM instances WHERE id = ?", {inst.id});
        if (!seq.ok()) return seq.status();
        op->run.seq = *seq + 1;
        DROVER_RETURN_IF_ERROR(
            tx.Exec(
                  "INSERT INTO runs (instance, seq, run_id, var_index, commit_sha, status, reason,"
                  " pre_exit, main_exit, post_exit, started_at, finished_at, log_tail,"
                  " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  {inst.id, op->run.seq, rep.run_id, rep.var_index, rep.commit, rep.status,
                   rep.reason, OptInt(rep.pre_exit), OptInt(rep.main_exit), OptInt(rep.post_exit),
                   rep.started_at_ms, rep.finished_at_ms, rep.log_tail, op->run.received_at_ms})
                .status());
        DROVER_RETURN_IF_ERROR(
            tx.Exec("UPDATE instances SET last_run_seq = ? WHERE id = ?", {op->run.seq, inst.id})
                .status());
        auto idx = tx.NextIndex();
        if (!idx.ok()) return idx.status();
        if (rep.status == "failed") {
          DROVER_RETURN_IF_ERROR(AddEvent(
              tx, inst.tenant, inst.environment, *idx, inst.id, "run-failed",
              fmt::format("run {} at {}: {}", op->run.seq,
                          rep.commit.empty() ? "no commit" : rep.commit.substr(0, 12), rep.reason),
              op->run.received_at_ms));
        }
        return tx.Notify(kTopic);
      },
      [op](Status s) {
        if (!s.ok()) return op->done(s);
        op->done(std::make_pair(std::move(op->run), op->created));
      });
}

std::function<void(Status)> EnvironmentService::InstanceGone(std::string id,
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

void EnvironmentService::Leave(Instance inst, std::string reason,
                               std::function<void(Status)> done) {
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

void EnvironmentService::Forget(Instance inst, std::function<void(Status)> done) {
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
        bool live = state != "terminated" && state != "failed";
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

Result<int64_t> EnvironmentService::PruneTerminated(int64_t retention_ms) {
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

Result<Page<Run>> EnvironmentService::Runs(const std::string& instance, const std::string& cursor,
                                           int limit) {
  auto below = ParseCursor(cursor);
  if (!below.ok()) return below.status();
  Page<Run> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        std::string(kRunColumns) + " WHERE instance = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        {instance, *below == 0 ? INT64_MAX : *below, int64_t{limit + 1}},
        [&](const store::Row& r) { page.items.push_back(ReadRun(r)); });
  });
  if (!s.ok()) return s;
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.pop_back();
    page.next_cursor = std::to_string(page.items.back().seq);
  }
  return page;
}

Result<Run> EnvironmentService::GetRun(const std::string& instance, int64_t seq) {
  std::optional<Run> found;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(std::string(kRunColumns) + " WHERE instance = ? AND seq = ?", {instance, seq},
                    [&](const store::Row& r) { found = ReadRun(r); });
  });
  if (!s.ok()) return s;
  if (!found) return Status::NotFound(fmt::format("instance '{}' has no run {}", instance, seq));
  return std::move(*found);
}

Result<Page<Event>> EnvironmentService::Events(const std::string& tenant, const std::string& env,
                                               const std::string& cursor, int limit) {
  auto after = ParseCursor(cursor);
  if (!after.ok()) return after.status();
  Page<Event> page;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query(
        "SELECT seq, instance, kind, reason, at FROM environment_events"
        " WHERE tenant = ? AND environment = ? AND seq > ? ORDER BY seq, instance, kind LIMIT ?",
        {tenant, env, *after, int64_t{limit + 1}}, [&](const store::Row& r) {
          page.items.push_back({r.Int(0), r.String(1), r.String(2), r.String(3), r.Int(4)});
        });
  });
  if (!s.ok()) return s;
  if (static_cast<int>(page.items.size()) > limit) {
    page.items.pop_back();
    page.next_cursor = std::to_string(page.items.back().seq);
  }
  return page;
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

Result<std::string> EnvironmentService::AddInstance(const Environment& env, int64_t restarts,
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

Status EnvironmentService::SetProviderInfo(const std::string& id, const std::string& provider_id,
                                           const std::string& address,
                                           const std::string& provider_data) {
  return store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    return tx
        .Exec("UPDATE instances SET provider_id = ?, address = ?, provider_data = ? WHERE id = ?",
              {provider_id, address, provider_data, id})
        .status();
  });
}

Result<bool> EnvironmentService::Transition(const Instance& inst, const std::string& to,
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
        {to, reason, *now, inst.id, inst.state});
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::Ok();
    moved = true;
    auto idx = tx.NextIndex();
    if (!idx.ok()) return idx.status();
    DROVER_RETURN_IF_ERROR(
        AddEvent(tx, inst.tenant, inst.environment, *idx, inst.id, kind, reason, *now));
    // A terminated instance's agent has nothing left to read or report.
    if (to == "terminated") DROVER_RETURN_IF_ERROR(auth::KeyService::RevokeInstance(tx, inst.id));
    return tx.Notify(kTopic);
  });
  if (!s.ok()) return s;
  if (moved) beats_.Forget(inst.id);
  return moved;
}

Status EnvironmentService::RecordEvent(const Environment& env, const std::string& kind,
                                       const std::string& reason, const store::Lease* lease) {
  return store::WriteSync(store_, [&](store::Tx& tx) -> Status {
    auto at = ControllerWrite(tx, lease);
    if (!at.ok()) return at.status();
    auto [now, idx] = *at;
    DROVER_RETURN_IF_ERROR(AddEvent(tx, env.tenant, env.name, idx, "", kind, reason, now));
    return tx.Notify(kTopic);
  });
}

void InstanceTally::Add(std::string_view state) {
  if (state == "running") ++running;
  if (state == "unhealthy" || state == "failed") ++broken;
  if (state != "terminated") ++live;
}

std::string_view PhaseOf(bool spec_error, std::optional<int64_t> desired, const InstanceTally& t) {
  if (spec_error) return "degraded";  // nothing acts on a spec that does not parse
  if (desired && *desired == 0 && t.live == 0) return "stopped";
  if (desired && t.running == *desired && t.broken == 0) return "ready";
  if (t.broken > 0) return "degraded";
  if (t.live == 0) return "pending";
  return "scaling";
}

Result<EnvironmentService::Counts> EnvironmentService::Count(int64_t now_ms) {
  auto envs = AllEnvironments();
  if (!envs.ok()) return envs.status();
  Counts c;
  std::map<std::pair<std::string, std::string>, InstanceTally> tallies;
  Status s = store_.Read([&](store::Tx& tx) {
    return tx.Query("SELECT tenant, environment, state FROM instances", {},
                    [&](const store::Row& r) {
                      std::string state = r.String(2);
                      tallies[{r.String(0), r.String(1)}].Add(state);
                      ++c.instances_by_state[state];
                    });
  });
  if (!s.ok()) return s;
  for (const auto& e : *envs) {
    auto phase =
        PhaseOf(!e.spec_error.empty(), CapacityOf(e, now_ms).desired, tallies[{e.tenant, e.name}]);
    ++c.environments_by_phase[std::string(phase)];
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
