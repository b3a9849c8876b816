#!/usr/bin/env bash
# The control center under agents:
# 1. Authenticated GET /v1/cc/agent (an agent key made by a join, its environment's view with an
#    agent: block and variables) beside nginx `return 200`, same wrk, same run.
# 2. 1,000 simulated agents in blocking queries (bench/cc_fanout.py, one asyncio process): time
#    from a variable PUT until all have the new index, p50/p99 over 20 changes — on SQLite (one
#    server) and on PostgreSQL with the queries split over two servers.
# 3. GET /v1/cc/agent again while an agent floods the server with log lines (bench/log_flood.py):
#    log batches number themselves apart from the change index, so the cached views stay valid.
#   bench/cc.sh              REPS=5 DURATION=8 AGENTS=1000 CHANGES=20; ONLY=http, ONLY=logs or
#                            ONLY=fanout runs one part
REPS="${REPS:-5}" DURATION="${DURATION:-8}" AGENTS="${AGENTS:-1000}" CHANGES="${CHANGES:-20}"
source "$(dirname "$0")/lib.sh"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

api() { curl -fs -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
          ${3:+-d "$3"} "$DROVER_ADDR$2"; }
# make_env : environment "sim" with an agent: block and two variables; prints a joined agent's
# key and instance id.
make_env() {
  api PUT /v1/environments/sim '{"provider":"static","capacity":1000,"agent":{"repository":"https://git.example.com/sim.git","ref":"main","main_run":"./run.sh","interval":600}}' >/dev/null
  api PUT /v1/variables/cc-a-build-tag '{"value":"b1","environment":"sim"}' >/dev/null
  api PUT /v1/variables/cc-a-delay '{"value":"5"}' >/dev/null
  local jt; jt="$(api GET /v1/environments/sim | python3 -c 'import json,sys;print(json.load(sys.stdin)["status"]["join_token"])')"
  curl -fs -X POST -H "Authorization: Bearer $jt" "$DROVER_ADDR/v1/environments/sim/join" |
    python3 -c 'import json,sys;j=json.load(sys.stdin);print(j["agent_key"], j["instance_id"])'
}

echo "# machine: $(machine_line)"
if [ "${ONLY:-http}" = http ]; then
echo
echo "## 1. GET /v1/cc/agent (agent key) vs nginx; drover --threads 1"
start_nginx
start_drover cc --threads 1 --log-format json --rate-limit 0
read -r AGENT_KEY _ < <(make_env)
curl -fs -H "Authorization: Bearer $AGENT_KEY" "$DROVER_ADDR/v1/cc/agent" && echo
compare_with_nginx "$DROVER_ADDR/v1/cc/agent" "$AGENT_KEY"
stop_drover
fi

if [ "${ONLY:-logs}" = logs ]; then
echo
echo "## 3. GET /v1/cc/agent alone, then with log lines flowing beside it; drover --threads 1"
start_drover ccl --threads 1 --rate-limit 0 --access-log false
read -r AGENT_KEY INSTANCE < <(make_env)
URL="$DROVER_ADDR/v1/cc/agent"
wrk -t2 -c64 -d2s -H "Authorization: Bearer $AGENT_KEY" "$URL" >/dev/null
: >"$T/alone" ; : >"$T/logs" ; : >"$T/lratio"
for r in $(seq 1 "$REPS"); do
  alone="$(wrk_run -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $AGENT_KEY" "$URL")"
  python3 "$ROOT/bench/log_flood.py" --server "$DROVER_ADDR" --key "$AGENT_KEY" \
    --instance "$INSTANCE" --seconds "$((DURATION + 3))" >"$T/flood" &
  FLOOD=$!
  sleep 1
  with="$(wrk_run -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $AGENT_KEY" "$URL")"
  wait "$FLOOD"
  echo "$alone" >>"$T/alone"; echo "$with" >>"$T/logs"
  ratio="$(awk -v a="${with%% *}" -v b="${alone%% *}" 'BEGIN{printf "%.3f", a/b}')"
  echo "$ratio" >>"$T/lratio"
  echo "rep $r: alone $alone | with logs $with | ratio $ratio   (req/s p50ms p99ms); $(cat "$T/flood")"
done
echo "median: alone $(awk '{print $1}' "$T/alone" | median) req/s p99 $(awk '{print $3}' "$T/alone" | median) ms | with logs $(awk '{print $1}' "$T/logs" | median) req/s p99 $(awk '{print $3}' "$T/logs" | median) ms | median per-rep ratio $(median <"$T/lratio")"
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
