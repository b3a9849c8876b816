#!/usr/bin/env bash
# Queues beside the job queues people would otherwise pick, in the same run (docs/queues.md):
#   1. single durable sends with wrk (the Node harness's HTTP client tops out below the server):
#      SQLite at 64 connections beside the same server with durability off (the ceiling), and
#      PostgreSQL at 16 connections beside pgbench's single-row inserts on the same cluster;
#   2. the peer harness (../shared/bench/peers, copied to bench/peers when it needs fixing):
#      drover (SQLite), drover-pg, bullmq, graphile-worker-batched and pgbench with the same
#      workload — N=20000 no-op messages, 16 concurrent single sends, bulk sends, a 16-consumer
#      drain (receive 10, batch ack), end-to-end latency at 100/s and 500/s.
#   bench/queues.sh [wrk|peers|all]     (default all)   Environment: REPS=3 DURATION=10
source "$(dirname "$0")/lib.sh"
WHAT="${1:-all}"
command -v wrk >/dev/null || { echo "needs wrk (make deps)" >&2; exit 2; }
echo "# machine: $(machine_line)"

metric() { curl -fs "$DROVER_ADDR/metrics" | awk -v m="$1" '$1==m{print $2}'; }
make_queue() {
  curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"visibility_timeout":"30s"}' "$DROVER_ADDR/v1/queues/noop" >/dev/null
}
# sends NAME CONNS : warm-up, then one measured wrk run; prints "sends/s p50_ms p99_ms batch"
sends() {
  export TOKEN QUEUE=noop
  wrk -t2 -c"$2" -d2s -s "$ROOT/bench/send.lua" "$DROVER_ADDR" >/dev/null
  local c0 w0 c1 w1 res
  c0="$(metric drover_store_commits_total)"; w0="$(metric drover_store_writes_total)"
  res="$(wrk_run -t2 -c"$2" -d"${DURATION}s" -s "$ROOT/bench/send.lua" "$DROVER_ADDR")"
  c1="$(metric drover_store_commits_total)"; w1="$(metric drover_store_writes_total)"
  echo "$res $(awk -v c=$((c1 - c0)) -v w=$((w1 - w0)) 'BEGIN{printf "%.1f", (c>0)? w/c : 0}')" | tee -a "$T/$1"
}

run_wrk() {
  : >"$T/r-sqlite"; : >"$T/r-ceiling"; : >"$T/r-pg"; : >"$T/r-pgbench"
  for r in $(seq 1 "$REPS"); do
    start_drover "s$r" --rate-limit 0 --access-log false; make_queue
    echo "rep $r sqlite durable: $(sends r-sqlite 64)"; stop_drover
    start_drover "n$r" --rate-limit 0 --access-log false --sqlite-synchronous normal; make_queue
    echo "rep $r sqlite no-sync ceiling: $(sends r-ceiling 64)"; stop_drover
  done
  start_pg pg
  psql_pg() { "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt "$@"; }
  psql_pg -c "CREATE TABLE jobs (id BIGSERIAL PRIMARY KEY, payload JSONB NOT NULL)" bench
  echo "INSERT INTO jobs (payload) VALUES ('{\"i\":1}');" >"$T/enq.sql"
  for r in $(seq 1 "$REPS"); do
    peer="$("$PGBIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -M prepared -c 16 -j 2 \
      -T "$DURATION" -f "$T/enq.sql" bench 2>/dev/null | awk '/^tps/{printf "%.0f", $3}')"
    echo "$peer" >>"$T/r-pgbench"
    psql_pg -c "CREATE DATABASE q$r" postgres
    start_drover "p$r" --rate-limit 0 --access-log false --db "postgres://postgres@127.0.0.1:$PG_PORT/q$r"
    make_queue
    echo "rep $r postgres durable: $(sends r-pg 16)  pgbench ${peer} inserts/s"; stop_drover
  done
  col() { awk -v c="$2" '{print $c}' "$T/$1" | median; }
  local s c p pb
  s="$(col r-sqlite 1)"; c="$(col r-ceiling 1)"; p="$(col r-pg 1)"; pb="$(col r-pgbench 1)"
  echo "median sqlite: ${s} sends/s, p50 $(col r-sqlite 2) ms, p99 $(col r-sqlite 3) ms, mean batch $(col r-sqlite 4) | no-sync ceiling ${c}/s | ratio $(awk -v a="$s" -v b="$c" 'BEGIN{printf "%.2f", a/b}') | goal >= 30000/s, >= 0.85 x ceiling, p99 < 10 ms"
  echo "median postgres: ${p} sends/s, p50 $(col r-pg 2) ms, p99 $(col r-pg 3) ms, mean batch $(col r-pg 4) | pgbench ${pb} single-row inserts/s at 16 clients | ratio $(awk -v a="$p" -v b="$pb" 'BEGIN{printf "%.2f", a/b}') | goal >= 1.5x"
}

run_peers() {
  local harness="$ROOT/bench/peers"
  [ -d "$harness" ] || harness="$ROOT/../shared/bench/peers"
  [ -x "$harness/run.sh" ] || { echo "no peer harness at $harness" >&2; exit 2; }
  DROVER_BIN="$DROVER_BIN" REPS="$REPS" "$harness/run.sh" \
    ${PEERS:-drover drover-pg bullmq graphile-worker-batched pgbench}
}

case "$WHAT" in
  wrk) run_wrk ;;
  peers) run_peers ;;
  all) run_wrk; run_peers ;;
  *) echo "usage: bench/queues.sh [wrk|peers|all]" >&2; exit 2 ;;
esac
