#pragma once
// Rows of the environment tables and the writes every env/ service shares: internal to env/.
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"
#include "env/records.h"
#include "store/lease.h"
#include "store/store.h"

namespace drover::env {

inline constexpr std::string_view kEnvColumns =
    "SELECT tenant, name, spec, join_token, create_index, modify_index, created_at, updated_at,"
    " scale_capacity, active_at FROM environments";
inline constexpr std::string_view kInstanceColumns =
    "SELECT i.id, i.tenant, i.environment, i.state, i.hostname, i.address, i.provider_id,"
    " i.facts, i.agent_version, i.current_run, i.skipped_runs, i.last_heartbeat, i.restarts,"
    " i.created_at, r.seq, r.commit_sha, r.status, r.main_exit, r.started_at, r.finished_at,"
    " i.provider_data, i.state_reason, i.updated_at, i.run_mode, i.run_interval_ms"
    " FROM instances i LEFT JOIN runs r ON r.instance = i.id AND r.seq = i.last_run_seq";
inline constexpr std::string_view kRunColumns =
    "SELECT seq, run_id, var_index, commit_sha, status, reason, pre_exit, main_exit, post_exit,"
    " started_at, finished_at, log_tail, received_at FROM runs";
Environment ReadEnvironment(const store::Row& r);
Instance ReadInstance(const store::Row& r);
Run ReadRun(const store::Row& r);

// A change record with {"environment": ..., "reason": ...} as its summary.
Status RecordChange(store::Tx& tx, const std::string& tenant, std::string_view kind,
                    const std::string& name, std::string_view op, const std::string& env,
                    const std::string& reason);
store::Param OptInt(const std::optional<int64_t>& v);
// An environment's event (its own history, `drover env events`) is also a change record of
// the environment or the instance (the change feed and the audit log).
Status AddEvent(store::Tx& tx, const std::string& tenant, const std::string& env, int64_t seq,
                const std::string& instance, std::string_view kind, const std::string& reason,
                int64_t at);
// A page cursor this server issued (a sequence number); "" is the start.
Result<int64_t> ParseCursor(const std::string& cursor);
// The start of a fleet-controller write: the lease fence (when given), then the database clock
// and a change index.
Result<std::pair<int64_t, int64_t>> ControllerWrite(store::Tx& tx, const store::Lease* lease);
Status NoEnvironment(const std::string& name);

}  // namespace drover::env
