#!/usr/bin/env bash
# Log ingest: one instance sends LINES log lines (POST /v1/instances/{id}/logs, 1,000 lines of
# ~100 bytes per request, 4 requests in flight) as fast as the server takes them, while a second
# client reads the API (GET /v1/environments/web, 4 connections): lines stored per second, and
# the API's p50/p99 during the burst beside the same read without it. The peer is the engine's
# ceiling, measured in the same run: the sqlite3 shell inserting the same number of rows of the
# same size into the same table and indexes, in transactions of 2,000 (drover's batch), with the
# same durability (WAL, synchronous=FULL) — no HTTP, no JSON, no buffering.
# Environment: REPS=3 LINES=1000000
source "$(dirname "$0")/lib.sh"
LINES="${LINES:-1000000}"
POSTS=$((LINES / 1000))
command -v wrk >/dev/null && command -v sqlite3 >/dev/null || { echo "needs wrk and sqlite3 (make deps)" >&2; exit 2; }

echo "# machine: $(machine_line)"
echo "# $LINES lines per rep ($POSTS posts of 1,000 lines, wrk -t1 -c4), API reads wrk -t1 -c4; $REPS reps"

python3 - "$T/body.json" <<'PY'
import json, sys
line = "GET /api/orders/12345 200 3.2 ms user=alice@example.com region=eu-west-1 trace=abcdef0123456789"
body = {"lines": [{"at": "2026-12-07T10:00:00.000Z", "stream": "app.log", "line": f"{line} {i}"}
                  for i in range(1000)]}
open(sys.argv[1], "w").write(json.dumps(body))
PY

metric() { curl -fs "$DROVER_ADDR/metrics" | awk -v m="$1" '$1==m{s+=$2} END{print s+0}'; }
metric_sum() { curl -fs "$DROVER_ADDR/metrics" | awk -v m="$1" 'index($1, m"{")==1{s+=$2} END{print s+0}'; }
now_ms() { date +%s%3N; }

# The ceiling: the same rows through the sqlite3 shell (log_lines as migration 14 makes it).
ceiling() {
  local db="$T/ceiling.db" batches=$((LINES / 2000)) sql="$T/ceiling.sql"
  rm -f "$db"*
  {
    echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
    echo "CREATE TABLE log_lines (tenant TEXT NOT NULL, environment TEXT NOT NULL, seq BIGINT NOT NULL, n BIGINT NOT NULL, at BIGINT NOT NULL, instance TEXT NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL, trace_id TEXT NOT NULL, bytes BIGINT NOT NULL, PRIMARY KEY (tenant, environment, seq, n));"
    echo "CREATE INDEX log_lines_by_seq ON log_lines (tenant, seq, n);"
    echo "CREATE INDEX log_lines_by_trace ON log_lines (tenant, trace_id, seq, n) WHERE trace_id <> '';"
    for b in $(seq 1 "$batches"); do
      echo "BEGIN; WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n+1 FROM k WHERE n < 1999) INSERT INTO log_lines SELECT 'default', 'web', $b, n, 1796637600000, 'i-0123456789abcdef', 'app.log', 'GET /api/orders/12345 200 3.2 ms user=alice@example.com region=eu-west-1 trace=abcdef0123456789 ' || n, '', 170 FROM k; COMMIT;"
    done
  } >"$sql"
  local t0 t1
  t0="$(now_ms)"; sqlite3 "$db" <"$sql" >/dev/null; t1="$(now_ms)"
  awk -v n="$LINES" -v ms=$((t1 - t0)) 'BEGIN{printf "%.0f", n*1000/ms}'
}

: >"$T/rate"; : >"$T/ceil"; : >"$T/p99_burst"; : >"$T/p99_idle"; : >"$T/ratio"
for r in $(seq 1 "$REPS"); do
  start_drover_on sqlite "logs$r"
  env_json="$(curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -d '{"provider":"static","capacity":1}' "$DROVER_ADDR/v1/environments/web")"
  join_token="$(echo "$env_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')"
  joined="$(curl -fs -X POST -H "Authorization: Bearer $join_token" "$DROVER_ADDR/v1/environments/web/join")"
  export INSTANCE AGENT_KEY BODY_FILE="$T/body.json" POSTS
  INSTANCE="$(echo "$joined" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')"
  AGENT_KEY="$(echo "$joined" | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent_key"])')"
  read_url="$DROVER_ADDR/v1/environments/web"
  # The API alone first.
  idle="$(wrk_run -t1 -c4 -d5s -H "Authorization: Bearer $TOKEN" "$read_url")"
  # The burst, with the reads beside it for as long as it may take (wrk stops at -d).
  t0="$(now_ms)"
  wrk -t1 -c4 -d120s -s "$ROOT/bench/logs_post.lua" "$DROVER_ADDR" >"$T/post.out" 2>&1 &
  post_pid=$!
  PIDS+=("$post_pid")
  (wrk_run -t1 -c4 -d5s -H "Authorization: Bearer $TOKEN" "$read_url" >"$T/burst.out") &
  read_pid=$!
  # Until every line is stored or counted as dropped (wrk's thread stops after POSTS answers,
  # but wrk itself waits out -d: it is stopped here).
  for _ in $(seq 1 2400); do
    stored="$(metric drover_log_lines_total)"; dropped="$(metric_sum drover_log_lines_dropped_total)"
    [ $((stored + dropped)) -ge "$LINES" ] && break
    sleep 0.05
  done
  t1="$(now_ms)"
  kill "$post_pid" 2>/dev/null || true; wait "$post_pid" 2>/dev/null || true
  wait "$read_pid"
  burst="$(cat "$T/burst.out")"
  rate="$(awk -v n="$stored" -v ms=$((t1 - t0)) 'BEGIN{printf "%.0f", n*1000/ms}')"
  stop_drover
  ceil="$(ceiling)"
  ratio="$(awk -v a="$rate" -v b="$ceil" 'BEGIN{printf "%.3f", a/b}')"
  echo "$rate" >>"$T/rate"; echo "$ceil" >>"$T/ceil"; echo "$ratio" >>"$T/ratio"
  echo "${burst##* }" >>"$T/p99_burst"; echo "${idle##* }" >>"$T/p99_idle"
  echo "rep $r: stored $stored dropped $dropped in $((t1 - t0)) ms = $rate lines/s | ceiling $ceil rows/s | ratio $ratio | API idle $idle | API during burst $burst   (req/s p50ms p99ms)"
done
echo "median: drover $(median <"$T/rate") lines/s, ceiling $(median <"$T/ceil") rows/s, ratio $(median <"$T/ratio"); API p99 $(median <"$T/p99_idle") ms alone, $(median <"$T/p99_burst") ms during the burst"
