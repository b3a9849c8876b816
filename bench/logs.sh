#!/usr/bin/env bash
# Log ingest: a burst of LINES lines (~100 bytes each) appended at once to a file that a real
# `drover agent --ship-log` ships from one instance, while a second client reads the API
# (GET /v1/environments/web, wrk -t1 -c4): lines stored per second from the first write to the
# last line stored, and the API's p50/p99 during the burst beside the same read without it. The
# peer is the engine's ceiling, measured in the same run: the sqlite3 shell inserting the same
# number of rows of the same size into the same table and indexes, in transactions of 2,000
# (drover's batch), with the same durability (WAL, synchronous=FULL) — no HTTP, no JSON, no
# agent. Also: how long a line sent takes to reach an open follow stream (?follow=true).
# Environment: REPS=3 LINES=1000000
source "$(dirname "$0")/lib.sh"
LINES="${LINES:-1000000}"
command -v wrk >/dev/null && command -v sqlite3 >/dev/null || { echo "needs wrk and sqlite3 (make deps)" >&2; exit 2; }

echo "# machine: $(machine_line)"
echo "# $LINES lines per rep appended to a file one agent ships (--ship-log); API reads wrk -t1 -c4; $REPS reps"

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

: >"$T/follow"; : >"$T/rate"; : >"$T/ceil"; : >"$T/p99_burst"; : >"$T/p99_idle"; : >"$T/ratio"
for r in $(seq 1 "$REPS"); do
  start_drover_on sqlite "logs$r"
  env_json="$(curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -d '{"provider":"static","capacity":1}' "$DROVER_ADDR/v1/environments/web")"
  join_token="$(echo "$env_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["join_token"])')"
  joined="$(curl -fs -X POST -H "Authorization: Bearer $join_token" "$DROVER_ADDR/v1/environments/web/join")"
  export INSTANCE AGENT_KEY
  INSTANCE="$(echo "$joined" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')"
  AGENT_KEY="$(echo "$joined" | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent_key"])')"
  read_url="$DROVER_ADDR/v1/environments/web"
  # Follow latency: a line sent, then seen on an open event stream (?follow=true), 20 times.
  follow="$(python3 - "$DROVER_ADDR" "$TOKEN" "$AGENT_KEY" "$INSTANCE" <<'PY'
import http.client, json, statistics, sys, threading, time, urllib.parse
addr, token, agent, inst = sys.argv[1:]
u = urllib.parse.urlparse(addr)
s = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
s.request("GET", "/v1/logs?environment=web&follow=true&limit=1", headers={"Authorization": "Bearer " + token})
resp = s.getresponse()
seen = {}
def read():
    for raw in resp:
        line = raw.decode()
        if line.startswith("data:") and "probe-" in line:
            seen[json.loads(line[5:])["line"]] = time.perf_counter()
threading.Thread(target=read, daemon=True).start()
p = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
lat = []
for i in range(20):
    name = f"probe-{i}"
    body = json.dumps({"lines": [{"at": "2026-12-07T10:00:00Z", "stream": "run", "line": name}]})
    t0 = time.perf_counter()
    p.request("POST", f"/v1/instances/{inst}/logs", body=body, headers={"Authorization": "Bearer " + agent})
    p.getresponse().read()
    while name not in seen and time.perf_counter() - t0 < 10:
        time.sleep(0.001)
    lat.append((seen.get(name, t0 + 10) - t0) * 1000)
print(f"{statistics.median(lat):.1f} {max(lat):.1f}")
PY
)"
  echo "$follow" >>"$T/follow"
  # The API alone first.
  idle="$(wrk_run -t1 -c4 -d5s -H "Authorization: Bearer $TOKEN" "$read_url")"
  # The agent, shipping the file (it joins with the environment's token).
  : >"$T/app$r.log"
  DROVER_JOIN_TOKEN="$join_token" "$DROVER_BIN" agent --server "$DROVER_ADDR" --environment web \
    --work-dir "$T/agent$r" --ship-log "$T/app$r.log" >"$T/agent$r.out" 2>&1 &
  agent_pid=$!
  PIDS+=("$agent_pid")
  for _ in $(seq 1 100); do
    [ "$(curl -fs -H "Authorization: Bearer $TOKEN" "$DROVER_ADDR/v1/environments/web/instances" | grep -o '"state":"running"' | wc -l)" -ge 1 ] && break
    sleep 0.1
  done
  base="$(metric drover_log_lines_total)"
  # The burst, with the reads beside it.
  t0="$(now_ms)"
  python3 - "$T/app$r.log" "$LINES" <<'PY' &
import sys
line = "GET /api/orders/12345 200 3.2 ms user=alice@example.com region=eu-west-1 trace=abcdef0123456789"
with open(sys.argv[1], "a") as f:
    n = int(sys.argv[2])
    for start in range(0, n, 10000):
        f.write("".join(f"{line} {i}\n" for i in range(start, min(n, start + 10000))))
PY
  writer_pid=$!
  (wrk_run -t1 -c4 -d5s -H "Authorization: Bearer $TOKEN" "$read_url" >"$T/burst.out") &
  read_pid=$!
  for _ in $(seq 1 6000); do
    stored=$(( $(metric drover_log_lines_total) - base ))
    [ "$stored" -ge "$LINES" ] && break
    sleep 0.05
  done
  t1="$(now_ms)"
  wait "$writer_pid"
  wait "$read_pid"
  burst="$(cat "$T/burst.out")"
  dropped="$(metric_sum drover_log_lines_dropped_total)"
  kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true
  rate="$(awk -v n="$stored" -v ms=$((t1 - t0)) 'BEGIN{printf "%.0f", n*1000/ms}')"
  stop_drover
  ceil="$(ceiling)"
  ratio="$(awk -v a="$rate" -v b="$ceil" 'BEGIN{printf "%.3f", a/b}')"
  echo "$rate" >>"$T/rate"; echo "$ceil" >>"$T/ceil"; echo "$ratio" >>"$T/ratio"
  echo "${burst##* }" >>"$T/p99_burst"; echo "${idle##* }" >>"$T/p99_idle"
  echo "rep $r: stored $stored (dropped/refused and sent again: $dropped) in $((t1 - t0)) ms = $rate lines/s | ceiling $ceil rows/s | ratio $ratio | API idle $idle | API during burst $burst   (req/s p50ms p99ms) | follow median/max $follow ms"
done
echo "median: drover $(median <"$T/rate") lines/s, ceiling $(median <"$T/ceil") rows/s, ratio $(median <"$T/ratio"); API p99 $(median <"$T/p99_idle") ms alone, $(median <"$T/p99_burst") ms during the burst; a sent line on an open follow stream after $(awk '{print $1}' "$T/follow" | median) ms (median of medians)"
