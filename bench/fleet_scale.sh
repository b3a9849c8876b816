#!/usr/bin/env bash
# Fleet controller at scale (issue 5): 1,000 static environments x 10 simulated agents
# heartbeating every 10 s (1,000 heartbeats/s) from one load process, on SQLite and on
# PostgreSQL: server CPU and RSS, reconcile lag p99 (goal: < 25 % of one core, lag < 1 s).
#   bench/fleet_scale.sh          ENVS=1000 PER_ENV=10 MEASURE=60 BACKENDS="sqlite postgres"
ENVS="${ENVS:-1000}"
PER_ENV="${PER_ENV:-10}"
MEASURE="${MEASURE:-60}"
BACKENDS="${BACKENDS:-sqlite postgres}"
source "$(dirname "$0")/lib.sh"

echo "# machine: $(machine_line)"
for backend in $BACKENDS; do
  start_drover_on "$backend" "scale-$backend"
  echo "## $backend: $ENVS environments x $PER_ENV agents, heartbeat every 10 s"
  python3 "$ROOT/bench/fleet_scale.py" --server "$DROVER_ADDR" --token "$TOKEN" --pid "$DROVER_PID" \
    --envs "$ENVS" --per-env "$PER_ENV" --interval 10 --measure "$MEASURE"
  stop_drover
done
