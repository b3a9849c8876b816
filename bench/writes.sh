#!/usr/bin/env bash
# Durable writes: PUT /v1/variables/{key}, answered after COMMIT, with CONNS connections.
#   bench/writes.sh                 SQLite (synchronous=FULL), 64 connections, beside the disk's
#                                   own fsync rate (pg_test_fsync) in the same run
#   bench/writes.sh --db postgres   a private PostgreSQL cluster, 16 connections, beside
#                                   pgbench's single-row inserts (one commit each) on the same
#                                   cluster with the same client count, in the same run
# Environment: REPS=3 DURATION=10 CONNS=64|16
source "$(dirname "$0")/lib.sh"
BACKEND=sqlite
[ "${1:-}" = "--db" ] && BACKEND="${2:-}"
case "$BACKEND" in sqlite) CONNS="${CONNS:-64}" ;; postgres) CONNS="${CONNS:-16}" ;;
  *) echo "usage: bench/writes.sh [--db sqlite|postgres]" >&2; exit 2 ;; esac
command -v wrk >/dev/null && [ -x "$PGBIN/pg_test_fsync" ] || { echo "needs wrk and postgresql (make deps)" >&2; exit 2; }

echo "# machine: $(machine_line)"
echo "# backend $BACKEND: wrk -t2 -c$CONNS -d${DURATION}s PUT (inserts, then updates), $REPS reps; drover default threads"
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
: >"$T/w"
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
  wrk -t2 -c"$CONNS" -d2s -s "$ROOT/bench/put.lua" "$DROVER_ADDR" >/dev/null  # warm-up
  c0="$(metric drover_store_commits_total)"; w0="$(metric drover_store_writes_total)"
  cpu0="$(cpu_seconds "$DROVER_PID")"
  res="$(wrk_run -t2 -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/put.lua" "$DROVER_ADDR")"
  cpu1="$(cpu_seconds "$DROVER_PID")"
  c1="$(metric drover_store_commits_total)"; w1="$(metric drover_store_writes_total)"
  batch="$(awk -v c=$((c1 - c0)) -v w=$((w1 - w0)) 'BEGIN{printf "%.1f", (c>0)? w/c : 0}')"
  cpu_us="$(awk -v a="$cpu0" -v b="$cpu1" -v w=$((w1 - w0)) 'BEGIN{printf "%.1f", (w>0)? (b-a)*1e6/w : 0}')"
  echo "$res $batch $cpu_us ${peer:-0}" >>"$T/w"
  echo "rep $r: $res  mean batch $batch  server CPU ${cpu_us} us/write${peer:+  pgbench ${peer} inserts/s}   (writes/s p50ms p99ms)"
  stop_drover
done
rps="$(awk '{print $1}' "$T/w" | median)"; p50="$(awk '{print $2}' "$T/w" | median)"
p99="$(awk '{print $3}' "$T/w" | median)"; batch="$(awk '{print $4}' "$T/w" | median)"
cpu="$(awk '{print $5}' "$T/w" | median)"
if [ "$BACKEND" = sqlite ]; then
  echo "median: drover ${rps} durable writes/s, p50 ${p50} ms, p99 ${p99} ms, mean batch ${batch}, server CPU ${cpu} us/write | disk fdatasync ${fsync}/s | goal >= 40000/s, p99 < 10 ms"
else
  peer="$(awk '{print $6}' "$T/w" | median)"
  ratio="$(awk '{if ($6>0) print $1/$6}' "$T/w" | median)"
  echo "median: drover on PostgreSQL ${rps} durable writes/s, p50 ${p50} ms, p99 ${p99} ms, mean batch ${batch}, server CPU ${cpu} us/write | pgbench ${peer} single-row inserts/s at ${CONNS} clients | ratio ${ratio} (per rep, median) | goal >= 2x, p99 < 20 ms"
fi
