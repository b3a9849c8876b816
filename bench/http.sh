#!/usr/bin/env bash
# Authenticated GET /v1/variables/{key} through drover (one I/O thread, access log, metrics and
# the SQLite read all on) beside nginx `return 200` (one worker), same wrk, same run.
#   bench/http.sh            REPS=5 DURATION=8 by default
REPS="${REPS:-5}" DURATION="${DURATION:-8}"
source "$(dirname "$0")/lib.sh"
start_nginx
# DROVER_ARGS: more server flags (e.g. --store-threads 4: the store pool on SQLite too).
start_drover http --threads 1 --log-format json --rate-limit 0 ${DROVER_ARGS:-}
curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"value":"https://github.com/example/sim.git"}' "$DROVER_ADDR/v1/variables/cc-a-repository" >/dev/null

echo "# machine: $(machine_line)"
echo "# drover --threads 1: GET /v1/variables/cc-a-repository"
compare_with_nginx "$DROVER_ADDR/v1/variables/cc-a-repository" "$TOKEN"
lines="$(grep -c '"msg":"request"' "$T/http/server.log" || true)"
echo "access-log lines written by drover: $lines"
