#!/usr/bin/env bash
# Durable writes: PUT /v1/variables/{key}, answered after COMMIT, with CONNS connections.
#   bench/writes.sh                 SQLite (synchronous=FULL), 64 connections, beside the disk's
#                                   own fsync rate (pg_test_fsync) in the same run
#   bench/writes.sh --db postgres   a private PostgreSQL cluster, 16 connections, beside
#                                   pgbench's single-row inserts (one commit each) on the same
#                                   cluster with the same client count, in the same run
# Each rep also measures the same server and load with durability off (SQLite synchronous=NORMAL,
# PostgreSQL synchronous_commit=off): the ceiling the machine's CPU allows, disk aside.
# BEFORE_BIN=path/to/older/drover adds an A/B: each rep also measures that binary's durable
# writes on the same backend, right after this one's, and the summary gives the ratio.
# Environment: REPS=3 DURATION=10 CONNS=64|16 BEFORE_BIN=
source "$(dirname "$0")/lib.sh"
BACKEND=sqlite
[ "${1:-}" = "--db" ] && BACKEND="${2:-}"
case "$BACKEND" in sqlite) CONNS="${CONNS:-64}" ;; postgres) CONNS="${CONNS:-16}" ;;
  *) echo "usage: bench/writes.sh [--db sqlite|postgres]" >&2; exit 2 ;; esac
command -v wrk >/dev/null && [ -x "$PGBIN/pg_test_fsync" ] || { echo "needs wrk and postgresql (make deps)" >&2; exit 2; }

echo "# machine: $(machine_line)"
echo "# backend $BACKEND: wrk -t2 -c$CONNS -d${DURATION}s PUT (inserts, then updates), $REPS reps; drover default threads"
echo "# each line: writes/s p50_ms p99_ms mean_batch server_cpu_us/write machine_busy_%"
if [ "$BACKEND" = sqlite ]; then
  fsync="$("$PGBIN/pg_test_fsync" -s 1 -f "$T/fsync.test" | awk '/Compare file sync methods using one 8kB write/{s=1} s && $1=="fdatasync"{print $2; exit}')"
  echo "disk: pg_test_fsync fdatasync ${fsync} ops/s (one 8 kB write + sync)"
else
  start_pg pg
  psql_pg() { "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt "$@"; }
  psql_pg -c "CREATE TABLE pgb (id BIGSERIAL PRIMARY KEY, k TEXT NOT NULL, v TEXT NOT NULL)" bench
  echo "INSERT INTO pgb (k, v) VALUES ('key-' || random(), 'some-value-of-moderate-length-0123456789');" >"$T/insert.sql"
fi

metric() { curl -fs "$DROVER_ADDR/metrics" | awk -v m="$1" '$1==m{print $2}'; }
# measure NAME : warm-up, then one wrk run against the running server; appends
# "writes/s p50 p99 batch cpu_us machine_busy_%" to $T/NAME and prints it.
measure() {
  wrk -t2 -c"$CONNS" -d2s -s "$ROOT/bench/put.lua" "$DROVER_ADDR" >/dev/null  # warm-up
  local c0 w0 cpu0 m0 res c1 w1 cpu1 m1 batch cpu_us busy
  c0="$(metric drover_store_commits_total)"; w0="$(metric drover_store_writes_total)"
  cpu0="$(cpu_seconds "$DROVER_PID")"; m0="$(machine_ticks)"
  res="$(wrk_run -t2 -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/put.lua" "$DROVER_ADDR")"
  cpu1="$(cpu_seconds "$DROVER_PID")"; m1="$(machine_ticks)"
  c1="$(metric drover_store_commits_total)"; w1="$(metric drover_store_writes_total)"
  batch="$(awk -v c=$((c1 - c0)) -v w=$((w1 - w0)) 'BEGIN{printf "%.1f", (c>0)? w/c : 0}')"
  cpu_us="$(awk -v a="$cpu0" -v b="$cpu1" -v w=$((w1 - w0)) 'BEGIN{printf "%.1f", (w>0)? (b-a)*1e6/w : 0}')"
  busy="$(echo "$m0 $m1" | awk '{printf "%.0f", ($4>$2)? 100*($3-$1)/($4-$2) : 0}')"
  echo "$res $batch $cpu_us $busy" >>"$T/$1"
  echo "$res $batch $cpu_us $busy"
}
: >"$T/w"; : >"$T/ceiling"; : >"$T/before"
for r in $(seq 1 "$REPS"); do
  peer=""
  if [ "$BACKEND" = postgres ]; then
    # The peer first, on the same cluster: one commit per insert, CONNS clients.
    peer="$("$PGBIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -M prepared -c "$CONNS" -j 2 \
      -T "$DURATION" -f "$T/insert.sql" bench 2>/dev/null | awk '/^tps/{printf "%.0f", $3}')"
    psql_pg -c "CREATE DATABASE drover$r" postgres
    start_drover "writes$r" --log-format json --rate-limit 0 --db "postgres://postgres@127.0.0.1:$PG_PORT/drover$r"
  else
    start_drover "writes$r" --log-format json --rate-limit 0
  fi
  export TOKEN
  res="$(measure w)"
  sed -i '$ s/$/ '"${peer:-0}"'/' "$T/w"
  echo "rep $r: durable $res${peer:+  pgbench ${peer} inserts/s}"
  stop_drover
  if [ -n "${BEFORE_BIN:-}" ]; then
    # The same load on the older binary, alternating with this one (shared noise).
    if [ "$BACKEND" = postgres ]; then
      psql_pg -c "CREATE DATABASE before$r" postgres
      DROVER_BIN="$BEFORE_BIN" start_drover "before$r" --log-format json --rate-limit 0 \
        --db "postgres://postgres@127.0.0.1:$PG_PORT/before$r"
    else
      DROVER_BIN="$BEFORE_BIN" start_drover "before$r" --log-format json --rate-limit 0
    fi
    echo "rep $r: before (A/B) $(measure before)"
    stop_drover
  fi
  # The ceiling: the same server and load with durability switched off (no disk sync per
  # commit), which shows how much of the limit is the machine's CPU rather than the disk.
  if [ "$BACKEND" = postgres ]; then
    psql_pg -c "CREATE DATABASE nosync$r" -c "ALTER DATABASE nosync$r SET synchronous_commit = off" postgres
    start_drover "nosync$r" --log-format json --rate-limit 0 --db "postgres://postgres@127.0.0.1:$PG_PORT/nosync$r"
  else
    start_drover "nosync$r" --log-format json --rate-limit 0 --sqlite-synchronous normal
  fi
  echo "rep $r: no-sync ceiling $(measure ceiling)"
  stop_drover
done
col() { awk -v c="$2" '{print $c}' "$T/$1" | median; }
rps="$(col w 1)"; p50="$(col w 2)"; p99="$(col w 3)"; batch="$(col w 4)"; cpu="$(col w 5)"
busy="$(col w 6)"; ceiling="$(col ceiling 1)"; ceiling_busy="$(col ceiling 6)"
if [ -n "${BEFORE_BIN:-}" ]; then
  ab="$(paste -d'|' "$T/w" "$T/before" | awk -F'|' '{split($1,a," "); split($2,b," "); if (b[1]>0) print a[1]/b[1]}' | median)"
  echo "A/B: before $(col before 1) durable writes/s, server CPU $(col before 5) us/write | this ${rps}, ${cpu} us/write | ratio this/before ${ab} (per rep, median)"
fi
echo "no-sync ceiling: ${ceiling} writes/s with the machine ${ceiling_busy}% busy (durable runs: ${busy}% busy)"
if [ "$BACKEND" = sqlite ]; then
  echo "median: drover ${rps} durable writes/s, p50 ${p50} ms, p99 ${p99} ms, mean batch ${batch}, server CPU ${cpu} us/write | disk fdatasync ${fsync}/s | goal >= 40000/s, p99 < 10 ms"
else
  peer="$(col w 7)"
  ratio="$(awk '{if ($7>0) print $1/$7}' "$T/w" | median)"
  echo "median: drover on PostgreSQL ${rps} durable writes/s, p50 ${p50} ms, p99 ${p99} ms, mean batch ${batch}, server CPU ${cpu} us/write | pgbench ${peer} single-row inserts/s at ${CONNS} clients | ratio ${ratio} (per rep, median) | goal >= 2x, p99 < 20 ms"
fi
