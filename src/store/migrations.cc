#include "store/migrations.h"

#include <fmt/format.h>

#include <chrono>

#include "common/log.h"

namespace drover::store {

std::span<const Migration> AllMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1,
       "foundation: counters, api keys, variables",
       {
           "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
           "INSERT INTO counters (name, value) VALUES ('index', 0)",
           "CREATE TABLE api_keys ("
           " id TEXT {{bytes}} PRIMARY KEY,"
           " name TEXT NOT NULL,"
           " role TEXT NOT NULL,"
           " tenant TEXT {{bytes}} NOT NULL,"
           " hash TEXT NOT NULL UNIQUE,"
           " rate_rps BIGINT,"
           " rate_burst BIGINT,"
           " created_at BIGINT NOT NULL)",
           "CREATE INDEX api_keys_tenant ON api_keys (tenant, id)",
           "CREATE TABLE variables ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " environment TEXT {{bytes}} NOT NULL,"
           " key TEXT {{bytes}} NOT NULL,"
           " value TEXT NOT NULL,"
           " create_index BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           // Key before environment: point reads and key-ordered listing share this one index,
           // which on SQLite holds the rows themselves.
           " PRIMARY KEY (tenant, key, environment)) {{without_rowid}}",
       }},
      {2,
       "leases",
       {
           "CREATE TABLE leases ("
           " name TEXT {{bytes}} PRIMARY KEY,"
           " holder TEXT NOT NULL,"
           " generation BIGINT NOT NULL,"
           " expires_at BIGINT NOT NULL)",
       }},
      {3,
       "environments, instances, runs, events; agent keys bound to an instance",
       {
           // An agent key made by a join acts only for its instance and environment.
           "ALTER TABLE api_keys ADD COLUMN environment TEXT",
           "ALTER TABLE api_keys ADD COLUMN instance TEXT",
           "CREATE TABLE environments ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " spec TEXT NOT NULL,"        // the validated spec, as JSON
           " agent_vars TEXT NOT NULL,"  // the agent: block as a JSON object of cc-a-* values
           " join_token TEXT NOT NULL,"
           " create_index BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, name))",
           "CREATE INDEX environments_name ON environments (name)",
           "CREATE TABLE instances ("
           " id TEXT {{bytes}} PRIMARY KEY,"
           " tenant TEXT {{bytes}} NOT NULL,"
           " environment TEXT {{bytes}} NOT NULL,"
           " state TEXT NOT NULL,"
           " hostname TEXT NOT NULL,"
           " address TEXT NOT NULL,"
           " provider_id TEXT NOT NULL,"
           " facts TEXT NOT NULL,"  // JSON object
           " agent_version TEXT NOT NULL,"
           " current_run TEXT,"  // JSON object while a run is going
           " skipped_runs BIGINT NOT NULL,"
           " last_heartbeat BIGINT,"
           " restarts BIGINT NOT NULL,"
           " last_run_seq BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL)",
           "CREATE INDEX instances_environment ON instances (tenant, environment, id)",
           "CREATE TABLE runs ("
           " instance TEXT {{bytes}} NOT NULL,"
           " seq BIGINT NOT NULL,"
           " run_id TEXT NOT NULL,"
           " var_index BIGINT NOT NULL,"
           " commit_sha TEXT NOT NULL,"
           " status TEXT NOT NULL,"
           " reason TEXT NOT NULL,"
           " pre_exit BIGINT,"
           " main_exit BIGINT,"
           " post_exit BIGINT,"
           " started_at BIGINT NOT NULL,"
           " finished_at BIGINT NOT NULL,"
           " log_tail TEXT NOT NULL,"
           " received_at BIGINT NOT NULL,"
           " PRIMARY KEY (instance, seq))",
           // A report delivered twice (agent retry after a lost answer) is stored once.
           "CREATE UNIQUE INDEX runs_run_id ON runs (instance, run_id)",
           "CREATE TABLE environment_events ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " environment TEXT {{bytes}} NOT NULL,"
           " seq BIGINT NOT NULL,"  // the change index of the write that recorded it
           " instance TEXT NOT NULL,"
           " kind TEXT NOT NULL,"
           " reason TEXT NOT NULL,"
           " at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, environment, seq, instance, kind))",
       }},
      {4,
       "fleet controller: scale overrides, provider data",
       {
           // POST .../scale: a capacity that wins over the spec's until the spec's changes.
           "ALTER TABLE environments ADD COLUMN scale_capacity TEXT",
           // What the provider needs to find the instance again (local: pid, start time, port).
           "ALTER TABLE instances ADD COLUMN provider_data TEXT",
           "ALTER TABLE instances ADD COLUMN state_reason TEXT",
       }},
      {5,
       "schedules and their firings",
       {
           "CREATE TABLE schedules ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " spec TEXT NOT NULL,"  // canonical JSON
           " window_env TEXT,"     // the environment a window holds (NULL: not a window)
           " create_index BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, name))",
           // One row per firing: the key makes a second firing of the same due time impossible,
           // whichever server tries (exactly once across failovers).
           "CREATE TABLE schedule_firings ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " due BIGINT NOT NULL,"
           " fired_at BIGINT NOT NULL,"
           " kind TEXT NOT NULL,"    // schedule | catch-up | manual
           " status TEXT NOT NULL,"  // pending | ok | failed
           " result TEXT NOT NULL,"
           " server TEXT NOT NULL,"
           " PRIMARY KEY (tenant, name, due))",
       }},
      {6,
       "instances that leave: run mode and interval of cron agents",
       {
           // 'once' for agents run by cron (drover agent --once): judged by the age of their
           // last run against their interval, not by heartbeats. NULL: a daemon.
           "ALTER TABLE instances ADD COLUMN run_mode TEXT",
           "ALTER TABLE instances ADD COLUMN run_interval_ms BIGINT",
           // Terminated instances are removed after a retention by the cleanup.
           "CREATE INDEX instances_state ON instances (state, updated_at)",
       }},
      {7,
       "the change log: the live feed and the audit log",
       {
           // One row per change, in the transaction of the change; seq is the change index.
           "CREATE TABLE changes ("
           " seq {{rowid_bigint}} PRIMARY KEY,"
           " at BIGINT NOT NULL,"
           " tenant TEXT {{bytes}} NOT NULL,"
           " kind TEXT NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " op TEXT NOT NULL,"
           " actor TEXT {{bytes}} NOT NULL,"  // a key id, or the part of the server
           " role TEXT NOT NULL,"             // the key's role, or 'system'
           " request_id TEXT NOT NULL,"
           " status INTEGER NOT NULL,"  // 0: applied; the HTTP status of a refused call
           " summary TEXT NOT NULL)",
           // Audit by actor. (No index on `at`: times follow seq, so pruning walks seq order.)
           "CREATE INDEX changes_actor ON changes (actor, seq)",
       }},
      {8,
       "settings: the key-signing secret",
       {
           // Values every server sharing the database must agree on, made once.
           "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
       }},
      {9,
       "queues and topics",
       {
           // The database's clock in SQL (SQLite registers the same function on each
           // connection): visibility and delays are judged by one clock across servers.
           "{{postgres_only}}CREATE FUNCTION drover_now_ms() RETURNS BIGINT LANGUAGE SQL STABLE"
           " AS 'SELECT (EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT'",
           "CREATE TABLE queues ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " fifo INTEGER NOT NULL,"
           " visibility_ms BIGINT NOT NULL,"
           " max_receives INTEGER NOT NULL,"        // 0: no limit
           " dead_letter TEXT {{bytes}} NOT NULL,"  // '' none
           " retention_ms BIGINT NOT NULL,"
           " delay_ms BIGINT NOT NULL,"
           " max_bytes BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " sent BIGINT NOT NULL DEFAULT 0,"  // counters, flushed by each server every second
           " received BIGINT NOT NULL DEFAULT 0,"
           " acked BIGINT NOT NULL DEFAULT 0,"
           " dead_lettered BIGINT NOT NULL DEFAULT 0,"
           " PRIMARY KEY (tenant, name)) {{without_rowid}}",
           // One row per message. visible_at: when it can be received (in the future while it
           // is delayed or in flight); NULL for a FIFO message waiting behind its group's head,
           // so a receive is one range of one index for both kinds of queue.
           "CREATE TABLE messages ("
           " id {{serial}},"
           " tenant TEXT {{bytes}} NOT NULL,"
           " queue TEXT {{bytes}} NOT NULL,"
           " grp TEXT {{bytes}} NOT NULL,"  // '' outside FIFO queues
           " body TEXT NOT NULL,"
           " attributes TEXT NOT NULL,"  // a JSON object, or ''
           " sent_at BIGINT NOT NULL,"
           " not_before BIGINT NOT NULL,"  // sent_at + delay
           " visible_at BIGINT,"
           " expires_at BIGINT NOT NULL,"
           " receive_count INTEGER NOT NULL,"
           " receipt BIGINT NOT NULL,"  // the nonce of the last receive (0: never received)
           " first_received_at BIGINT,"
           " source TEXT {{bytes}} NOT NULL)",  // the queue a dead-lettered message came from
           "CREATE INDEX messages_ready ON messages (tenant, queue, visible_at, id)",
           "CREATE INDEX messages_group ON messages (tenant, queue, grp, id) WHERE grp <> ''",
           "CREATE TABLE queue_dedup ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " queue TEXT {{bytes}} NOT NULL,"
           " dedup_id TEXT {{bytes}} NOT NULL,"
           " message_id BIGINT NOT NULL,"
           " expires_at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, queue, dedup_id)) {{without_rowid}}",
           "CREATE INDEX queue_dedup_expiry ON queue_dedup (expires_at)",
           "CREATE TABLE topics ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, name)) {{without_rowid}}",
           "CREATE TABLE subscriptions ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " topic TEXT {{bytes}} NOT NULL,"
           " queue TEXT {{bytes}} NOT NULL,"
           " filter TEXT NOT NULL,"  // a JSON filter policy, or ''
           " created_at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, topic, queue)) {{without_rowid}}",
           "CREATE INDEX subscriptions_queue ON subscriptions (tenant, queue)",
       }},
      {10,
       "workflows and executions",
       {
           "CREATE TABLE workflows ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " version BIGINT NOT NULL,"  // the current one
           " spec TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, name)) {{without_rowid}}",
           // Every version, kept while executions may name it.
           "CREATE TABLE workflow_versions ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " version BIGINT NOT NULL,"
           " spec TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, name, version)) {{without_rowid}}",
           // The topics that start executions of a workflow (its spec's triggers).
           "CREATE TABLE workflow_triggers ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " topic TEXT {{bytes}} NOT NULL,"
           " workflow TEXT {{bytes}} NOT NULL,"
           " PRIMARY KEY (tenant, topic, workflow)) {{without_rowid}}",
           // The read model of an execution (its event log is the truth).
           "CREATE TABLE executions ("
           " id TEXT {{bytes}} PRIMARY KEY,"
           " tenant TEXT {{bytes}} NOT NULL,"
           " workflow TEXT {{bytes}} NOT NULL,"
           " version BIGINT NOT NULL,"
           " status TEXT NOT NULL,"
           " run INTEGER NOT NULL,"
           " input TEXT NOT NULL,"
           " output TEXT NOT NULL,"
           " error TEXT NOT NULL,"
           " idempotency_key TEXT {{bytes}} NOT NULL,"  // '' none
           " concurrency_key TEXT {{bytes}} NOT NULL,"  // '' none
           " created_at BIGINT NOT NULL,"
           " started_at BIGINT NOT NULL,"
           " ended_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " last_seq BIGINT NOT NULL,"
           " wake_at BIGINT)",  // when the engine must look again; NULL: when told
           "CREATE UNIQUE INDEX executions_idempotency ON executions"
           " (tenant, workflow, idempotency_key) WHERE idempotency_key <> ''",
           "CREATE INDEX executions_recent ON executions (tenant, created_at, id)",
           "CREATE INDEX executions_wake ON executions (wake_at) WHERE wake_at IS NOT NULL",
           "CREATE INDEX executions_concurrency ON executions"
           " (tenant, workflow, concurrency_key, status) WHERE concurrency_key <> ''",
           // The log: one row per event; event_id (kind/step/attempt) is unique per execution,
           // so a duplicate delivery cannot append twice.
           "CREATE TABLE execution_events ("
           " execution TEXT {{bytes}} NOT NULL,"
           " seq BIGINT NOT NULL,"
           " event_id TEXT {{bytes}} NOT NULL,"
           " kind TEXT NOT NULL,"
           " step TEXT {{bytes}} NOT NULL,"
           " attempt INTEGER NOT NULL,"
           " data TEXT NOT NULL,"
           " at BIGINT NOT NULL,"
           " PRIMARY KEY (execution, seq)) {{without_rowid}}",
           "CREATE UNIQUE INDEX execution_events_id ON execution_events (execution, event_id)",
           "CREATE TABLE execution_steps ("
           " execution TEXT {{bytes}} NOT NULL,"
           " step TEXT {{bytes}} NOT NULL,"
           " status TEXT NOT NULL,"
           " attempt INTEGER NOT NULL,"
           " output TEXT NOT NULL,"
           " error TEXT NOT NULL,"
           " scheduled_at BIGINT NOT NULL,"
           " due_at BIGINT NOT NULL,"
           " started_at BIGINT NOT NULL,"
           " ended_at BIGINT NOT NULL,"
           " message_id BIGINT NOT NULL,"
           " PRIMARY KEY (execution, step)) {{without_rowid}}",
       }},
      {11,
       "gateway routes and environment activity",
       {
           // Names are global: /svc/{name}/ has no tenant in it.
           "CREATE TABLE routes ("
           " name TEXT {{bytes}} PRIMARY KEY,"
           " tenant TEXT {{bytes}} NOT NULL,"
           " spec TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL) {{without_rowid}}",
           "CREATE INDEX routes_tenant ON routes (tenant, name)",
           // When proxied traffic last reached the environment (ms; 0 never): activity that
           // keeps its idle timeout from closing it.
           "ALTER TABLE environments ADD COLUMN active_at BIGINT NOT NULL DEFAULT 0",
           // Browser access to /env/NAME/ (drover env open): single-use login codes and the
           // sessions they open, by the SHA-256 of their secret; a session ends with its key.
           "CREATE TABLE env_sessions ("
           " token_hash TEXT {{bytes}} PRIMARY KEY,"
           " kind TEXT NOT NULL,"  // code | session
           " key_id TEXT {{bytes}} NOT NULL,"
           " tenant TEXT {{bytes}} NOT NULL,"
           " environment TEXT {{bytes}} NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " expires_at BIGINT NOT NULL) {{without_rowid}}",
           "CREATE INDEX env_sessions_expiry ON env_sessions (expires_at)",
       }},
      {12,
       "alert rules, their states and history",
       {
           "CREATE TABLE alerts ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " name TEXT {{bytes}} NOT NULL,"
           " spec TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " modify_index BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, name)) {{without_rowid}}",
           // Pending and firing alerts, one per rule and series (labels: the series' labels
           // as a JSON object with sorted keys); value as text (the exact double).
           "CREATE TABLE alert_states ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " rule TEXT {{bytes}} NOT NULL,"
           " labels TEXT {{bytes}} NOT NULL,"
           " phase TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " active_since BIGINT NOT NULL,"
           " fired_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, rule, labels)) {{without_rowid}}",
           // Every transition, by the change index it was written with.
           "CREATE TABLE alert_history ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " rule TEXT {{bytes}} NOT NULL,"
           " seq BIGINT NOT NULL,"
           " at BIGINT NOT NULL,"
           " labels TEXT NOT NULL,"
           " transition TEXT NOT NULL,"
           " value TEXT NOT NULL,"
           " annotations TEXT NOT NULL,"
           " PRIMARY KEY (tenant, rule, seq)) {{without_rowid}}",
           // Notifications to deliver (written with the transition that makes them, so none is
           // lost): target "webhook:URL" or "topic:NAME", retried with backoff until delivered
           // or a day old.
           "CREATE TABLE alert_outbox ("
           " id {{serial}},"
           " tenant TEXT {{bytes}} NOT NULL,"
           " rule TEXT {{bytes}} NOT NULL,"
           " target TEXT NOT NULL,"
           " payload TEXT NOT NULL,"
           " attempts BIGINT NOT NULL,"
           " next_at BIGINT NOT NULL,"
           " created_at BIGINT NOT NULL)",
           "CREATE INDEX alert_outbox_due ON alert_outbox (next_at)",
           // A rule's silence: until then its transitions notify nobody (they are still
           // evaluated, stored and in the change feed).
           "CREATE TABLE alert_silences ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " rule TEXT {{bytes}} NOT NULL,"
           " until_at BIGINT NOT NULL,"
           " comment TEXT NOT NULL,"
           " created_by TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, rule)) {{without_rowid}}",
       }},
      {13,
       "tenants given the built-in alert rules",
       {
           // Once a tenant is here it is not given them again: a rule it deleted stays deleted.
           "CREATE TABLE alert_defaults ("
           " tenant TEXT {{bytes}} PRIMARY KEY,"
           " seeded_at BIGINT NOT NULL)",
       }},
      {14,
       "the log store",
       {
           // Lines in the order they were committed: (seq, n) is the change index of the batch
           // that wrote a line and its place in it. `at` is when the line was written (the
           // shipper's clock); `bytes` its share of the tenant's cap.
           "CREATE TABLE log_lines ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " environment TEXT {{bytes}} NOT NULL,"
           " seq BIGINT NOT NULL,"
           " n BIGINT NOT NULL,"
           " at BIGINT NOT NULL,"
           " instance TEXT NOT NULL,"
           " stream TEXT NOT NULL,"
           " line TEXT NOT NULL,"
           " trace_id TEXT NOT NULL,"
           " bytes BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, environment, seq, n))",
           "CREATE INDEX log_lines_by_seq ON log_lines (tenant, seq, n)",
           "CREATE INDEX log_lines_by_trace ON log_lines (tenant, trace_id, seq, n)"
           " WHERE trace_id <> ''",
           // What each tenant's lines take, kept with every write and prune (the cap is checked
           // against it without reading the lines).
           "CREATE TABLE log_usage ("
           " tenant TEXT {{bytes}} PRIMARY KEY,"
           " bytes BIGINT NOT NULL,"
           " lines BIGINT NOT NULL)",
       }},
      {15,
       "servers' shared counters",
       {
           // Each server's counters and histograms (Prometheus text), written every alert
           // round while several servers share the database; the leader evaluates the alert
           // rules over all of them.
           "CREATE TABLE server_metrics ("
           " server TEXT {{bytes}} PRIMARY KEY,"
           " at BIGINT NOT NULL,"
           " text TEXT NOT NULL)",
       }},
      {16,
       "the trace of each execution",
       {
           // The W3C traceparent an execution runs in ('' for those made before): its task
           // messages carry a child of it to the workers.
           "ALTER TABLE executions ADD COLUMN traceparent TEXT NOT NULL DEFAULT ''",
       }},
      {17,
       "log lines take a sequence of their own",
       {
           // Log batches number themselves from this counter instead of the change index, so
           // a flood of lines does not move the index that cached reads and blocking reads key
           // on. It goes on from the highest index a batch took.
           "INSERT INTO counters (name, value) SELECT 'log_seq', COALESCE(MAX(seq), 0) FROM"
           " log_lines",
       }},
      {18,
       "a day of each queue's figures",
       {
           // Written every minute by the cleanup (once per cluster): the charts of the dashboard.
           "CREATE TABLE queue_history ("
           " tenant TEXT {{bytes}} NOT NULL,"
           " queue TEXT {{bytes}} NOT NULL,"
           " at BIGINT NOT NULL,"
           " depth BIGINT NOT NULL,"
           " sent BIGINT NOT NULL,"
           " received BIGINT NOT NULL,"
           " acked BIGINT NOT NULL,"
           " dead_lettered BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, queue, at))",
       }},
      {19,
       "a day of the server's own metrics",
       {
           // Written each minute by the alert runner on the leader (alerts/history.h): what the
           // minute added to a few counters, and a few latency quantiles, for the charts.
           "CREATE TABLE metric_history ("
           " tenant TEXT {{bytes}} NOT NULL,"  // '' for the server's own series
           " name TEXT {{bytes}} NOT NULL,"
           " labels TEXT {{bytes}} NOT NULL,"  // a JSON object, keys sorted
           " at BIGINT NOT NULL,"
           " value BIGINT NOT NULL,"
           " PRIMARY KEY (tenant, name, labels, at))",
           "CREATE INDEX metric_history_at ON metric_history (at)",
       }},
  };
  return kMigrations;
}

std::string ForBackend(std::string_view sql, std::string_view backend) {
  constexpr std::string_view kPostgresOnly = "{{postgres_only}}";
  if (sql.starts_with(kPostgresOnly)) {
    if (backend != "postgres") return {};
    sql.remove_prefix(kPostgresOnly.size());
  }
  struct Token {
    std::string_view token, sqlite, postgres;
  };
  static constexpr Token kTokens[] = {
      {"{{without_rowid}}", "WITHOUT ROWID", ""},
      {"{{bytes}}", "", "COLLATE \"C\""},  // SQLite compares bytes by default
      // A 64-bit key that is SQLite's rowid itself (one B-tree, integer compares).
      {"{{rowid_bigint}}", "INTEGER", "BIGINT"},
      // A key the database assigns, never reused (SQLite: even after the highest row goes).
      {"{{serial}}", "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"},
  };
  std::string out(sql);
  for (const auto& t : kTokens) {
    std::string_view text = backend == "sqlite" ? t.sqlite : t.postgres;
    for (auto pos = out.find(t.token); pos != std::string::npos; pos = out.find(t.token, pos)) {
      out.replace(pos, t.token.size(), text);
    }
  }
  return out;
}

Status ApplyMigrations(Tx& tx, std::string_view backend, std::string_view begin) {
  auto exec = [&tx](std::string_view sql) { return tx.Exec(sql).status(); };
  DROVER_RETURN_IF_ERROR(
      exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
           "NOT NULL, applied_at BIGINT NOT NULL)"));
  auto current = tx.QueryInt("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!current.ok()) return current.status();
  for (const auto& m : AllMigrations()) {
    if (m.version <= *current) continue;
    DROVER_RETURN_IF_ERROR(exec(begin));
    Status s;
    for (auto stmt : m.statements) {
      std::string sql = ForBackend(stmt, backend);
      if (sql.empty()) continue;  // not for this backend
      s = exec(sql);
      if (!s.ok()) break;
    }
    if (s.ok()) {
      auto now = tx.NowMillis();
      s = now.ok() ? tx.Exec(
                           "INSERT INTO schema_migrations (version, name, applied_at) VALUES"
                           " (?, ?, ?)",
                           {int64_t{m.version}, m.name, *now})
                         .status()
                   : now.status();
    }
    if (s.ok()) s = exec("COMMIT");
    if (!s.ok()) {
      (void)exec("ROLLBACK");
      return Status::Unavailable(
          fmt::format("migration {} ({}) failed: {}", m.version, m.name, s.ToString()));
    }
    LogInfo("applied migration {} ({})", m.version, m.name);
  }
  return Status::Ok();
}

}  // namespace drover::store
