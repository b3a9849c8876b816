#!/usr/bin/env bash
# Schedules at scale (issue 6): 10,000 schedules of @every 10s on one server, SQLite and
# PostgreSQL: firing lag p99 and server CPU (goal: lag < 100 ms, < 20 % of a core).
# The next-fire computation itself: build/src/cron_bench (Google Benchmark).
#   bench/schedules.sh        SCHEDULES=10000 MEASURE=60 BACKENDS="sqlite postgres"
SCHEDULES="${SCHEDULES:-10000}"
MEASURE="${MEASURE:-60}"
BACKENDS="${BACKENDS:-sqlite postgres}"
source "$(dirname "$0")/lib.sh"

echo "# machine: $(machine_line)"
echo "## next-fire computation (Google Benchmark)"
"$ROOT/build/src/cron_bench" --benchmark_min_time=0.3 2>/dev/null | grep -E "^BM_"
for backend in $BACKENDS; do
  start_drover_on "$backend" "sched-$backend"
  echo "## $backend: $SCHEDULES schedules"
  python3 "$ROOT/bench/schedules.py" --server "$DROVER_ADDR" --token "$TOKEN" --pid "$DROVER_PID" \
    --schedules "$SCHEDULES" --measure "$MEASURE"
  stop_drover
done
