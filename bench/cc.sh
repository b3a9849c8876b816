#!/usr/bin/env bash
# The control center under agents:
# 1. Authenticated GET /v1/cc/agent (an agent key made by a join, its environment's view with an
#    agent: block and variables) beside nginx `return 200`, same wrk, same run.
# 2. 1,000 simulated agents in blocking queries (bench/cc_fanout.py, one asyncio process): time
#    from a variable PUT until all have the new index, p50/p99 over 20 changes — on SQLite (one
#    server) and on PostgreSQL with the queries split over two servers.
#   bench/cc.sh              REPS=5 DURATION=8 AGENTS=1000 CHANGES=20; ONLY=http or ONLY=fanout
#                            runs one part
REPS="${REPS:-5}" DURATION="${DURATION:-8}" AGENTS="${AGENTS:-1000}" CHANGES="${CHANGES:-20}"
source "$(dirname "$0")/lib.sh"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

api() { curl -fs -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
          ${3:+-d "$3"} "$DROVER_ADDR$2"; }
# make_env : environment "sim" with an agent: block and two variables; prints a joined agent key.
make_env() {
  api PUT /v1/environments/sim '{"provider":"static","capacity":1000,"agent":{"repository":"https://git.example.com/sim.git","ref":"main","main_run":"./run.sh","interval":600}}' >/dev/null
  api PUT /v1/variables/cc-a-build-tag '{"value":"b1","environment":"sim"}' >/dev/null
  api PUT /v1/variables/cc-a-delay '{"value":"5"}' >/dev/null
  local jt; jt="$(api GET /v1/environments/sim | python3 -c 'import json,sys;print(json.load(sys.stdin)["status"]["join_token"])')"
  curl -fs -X POST -H "Authorization: Bearer $jt" "$DROVER_ADDR/v1/environments/sim/join" |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["agent_key"])'
}

echo "# machine: $(machine_line)"
if [ "${ONLY:-http}" = http ]; then
echo
echo "## 1. GET /v1/cc/agent (agent key) vs nginx; drover --threads 1"
start_nginx
start_drover cc --threads 1 --log-format json --rate-limit 0
AGENT_KEY="$(make_env)"
curl -fs -H "Authorization: Bearer $AGENT_KEY" "$DROVER_ADDR/v1/cc/agent" && echo
compare_with_nginx "$DROVER_ADDR/v1/cc/agent" "$AGENT_KEY"
stop_drover
fi
[ "${ONLY:-fanout}" = fanout ] || exit 0

echo
echo "## 2a. $AGENTS agents blocking on one server, SQLite"
start_drover fan --rate-limit 0 --access-log false
make_env >/dev/null
python3 "$ROOT/bench/cc_fanout.py" --servers "$DROVER_ADDR" --token "$TOKEN" \
  --environment sim --agents "$AGENTS" --changes "$CHANGES"
stop_drover

echo
echo "## 2b. $AGENTS agents blocking, split over two servers on PostgreSQL; PUTs through the first"
start_pg pg
start_drover pga --db "$PG_URL" --rate-limit 0 --access-log false
A="$DROVER_ADDR"
make_env >/dev/null
start_drover pgb --db "$PG_URL" --rate-limit 0 --access-log false
B="$DROVER_ADDR"
python3 "$ROOT/bench/cc_fanout.py" --servers "$A,$B" --token "$TOKEN" \
  --environment sim --agents "$AGENTS" --changes "$CHANGES"
