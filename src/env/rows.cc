#include "env/rows.h"

#include <fmt/format.h>

#include <boost/json/parse.hpp>

#include "common/json.h"
#include "events/change_log.h"
#include "store/lease.h"

namespace drover::env {

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
  e.active_at_ms = r.Int(9);
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

Instance ReadInstance(const store::Row& r) {
  Instance i;
  i.id = r.String(0);
  i.tenant = r.String(1);
  i.environment = r.String(2);
  // A state no version wrote (a damaged row) reads as failed: nothing acts on it.
  i.state = ParseInstanceState(r.Text(3)).value_or(InstanceState::kFailed);
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

}  // namespace drover::env
