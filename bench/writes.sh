#!/usr/bin/env bash
# Durable writes: PUT /v1/variables/{key} (synchronous=FULL, answered after COMMIT) with 64
# connections, beside the disk's own fsync rate (pg_test_fsync) in the same run.
#   bench/writes.sh          REPS=3 DURATION=10 CONNS=64
source "$(dirname "$0")/lib.sh"
CONNS="${CONNS:-64}"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
command -v wrk >/dev/null && [ -x "$PGBIN/pg_test_fsync" ] || { echo "needs wrk and postgresql (make deps)" >&2; exit 2; }

echo "# machine: $(machine_line)"
echo "# wrk -t2 -c$CONNS -d${DURATION}s PUT with a new key per request, $REPS reps; drover default threads, synchronous=FULL"
fsync="$("$PGBIN/pg_test_fsync" -s 1 -f "$T/fsync.test" | awk '/Compare file sync methods using one 8kB write/{s=1} s && $1=="fdatasync"{print $2; exit}')"
echo "disk: pg_test_fsync fdatasync ${fsync} ops/s (one 8 kB write + sync)"

metric() { curl -fs "$DROVER_ADDR/metrics" | awk -v m="$1" '$1==m{print $2}'; }
: >"$T/w"
for r in $(seq 1 "$REPS"); do
  start_drover "writes$r" --log-format json --rate-limit 0
  export TOKEN
  wrk -t2 -c"$CONNS" -d2s -s "$ROOT/bench/put.lua" "$DROVER_ADDR" >/dev/null  # warm-up
  c0="$(metric drover_store_commits_total)"; w0="$(metric drover_store_writes_total)"
  cpu0="$(cpu_seconds "$DROVER_PID")"
  res="$(wrk_run -t2 -c"$CONNS" -d"${DURATION}s" -s "$ROOT/bench/put.lua" "$DROVER_ADDR")"
  cpu1="$(cpu_seconds "$DROVER_PID")"
  c1="$(metric drover_store_commits_total)"; w1="$(metric drover_store_writes_total)"
  batch="$(awk -v c=$((c1 - c0)) -v w=$((w1 - w0)) 'BEGIN{printf "%.1f", (c>0)? w/c : 0}')"
  cpu_us="$(awk -v a="$cpu0" -v b="$cpu1" -v w=$((w1 - w0)) 'BEGIN{printf "%.1f", (w>0)? (b-a)*1e6/w : 0}')"
  echo "$res $batch $cpu_us" >>"$T/w"
  echo "rep $r: $res  mean batch $batch  server CPU ${cpu_us} us/write   (writes/s p50ms p99ms)"
  stop_drover
done
rps="$(awk '{print $1}' "$T/w" | median)"; p50="$(awk '{print $2}' "$T/w" | median)"
p99="$(awk '{print $3}' "$T/w" | median)"; batch="$(awk '{print $4}' "$T/w" | median)"
cpu="$(awk '{print $5}' "$T/w" | median)"
echo "median: drover ${rps} durable writes/s, p50 ${p50} ms, p99 ${p99} ms, mean batch ${batch}, server CPU ${cpu} us/write | disk fdatasync ${fsync}/s | goal >= 40000/s, p99 < 10 ms"
