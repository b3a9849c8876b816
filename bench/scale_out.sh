#!/usr/bin/env bash
# Two drover servers on one PostgreSQL database vs one: aggregate durable writes (PUT) and
# authenticated reads (GET /v1/variables/{key}) with the same total client connections, in the
# same run. Both servers and PostgreSQL share this machine's cores, so this measures what a
# second server costs or gains here, not what a second machine would add.
#   bench/scale_out.sh       REPS=3 DURATION=8 WCONNS=32 RCONNS=64
source "$(dirname "$0")/lib.sh"
WCONNS="${WCONNS:-32}" RCONNS="${RCONNS:-64}"
command -v wrk >/dev/null && [ -x "$PGBIN/pg_ctl" ] || { echo "needs wrk and postgresql (make deps)" >&2; exit 2; }
echo "# machine: $(machine_line)"
echo "# one vs two servers on one PostgreSQL; writes: $WCONNS connections in total, reads: $RCONNS; ${DURATION}s, $REPS reps"
start_pg pg
export KEYS=20000

# load NAME LUA CONNS URL... : runs one wrk per URL at once, CONNS split evenly; prints the
# summed req/s and the worst p99.
load() {
  local name="$1" script="$2" conns="$3"; shift 3
  local n=$# i=0
  for url in "$@"; do
    i=$((i + 1))
    if [ -n "$script" ]; then
      wrk_run -t1 -c$((conns / n)) -d"${DURATION}s" -s "$script" "$url" >"$T/$name.$i" &
    else
      wrk_run -t1 -c$((conns / n)) -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$url" >"$T/$name.$i" &
    fi
  done
  wait
  cat "$T/$name".* | awk '{s+=$1; if ($3>p) p=$3} END{printf "%.0f %.3f\n", s, p}'
  rm -f "$T/$name".*
}

: >"$T/res"
for r in $(seq 1 "$REPS"); do
  "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt -c "CREATE DATABASE so$r" postgres
  db="postgres://postgres@127.0.0.1:$PG_PORT/so$r"
  start_drover "a$r" --db "$db" --log-format json --rate-limit 0
  A="$DROVER_ADDR"; A_PID="$DROVER_PID"; tok="$TOKEN"
  start_drover "b$r" --db "$db" --log-format json --rate-limit 0
  B="$DROVER_ADDR"; B_PID="$DROVER_PID"; TOKEN="$tok"; export TOKEN
  curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"value":"https://github.com/example/sim.git"}' "$A/v1/variables/cc-a-repository" >/dev/null
  wrk -t1 -c8 -d2s -s "$ROOT/bench/put.lua" "$A" >/dev/null; wrk -t1 -c8 -d2s -s "$ROOT/bench/put.lua" "$B" >/dev/null
  w1="$(load w1 "$ROOT/bench/put.lua" "$WCONNS" "$A")"
  w2="$(load w2 "$ROOT/bench/put.lua" "$WCONNS" "$A" "$B")"
  r1="$(load r1 "" "$RCONNS" "$A/v1/variables/cc-a-repository")"
  r2="$(load r2 "" "$RCONNS" "$A/v1/variables/cc-a-repository" "$B/v1/variables/cc-a-repository")"
  echo "$w1 $w2 $r1 $r2" >>"$T/res"
  echo "rep $r: writes one ${w1% *}/s two ${w2% *}/s | reads one ${r1% *}/s two ${r2% *}/s   (p99 ms: ${w1#* } ${w2#* } ${r1#* } ${r2#* })"
  kill "$A_PID" "$B_PID"; wait "$A_PID" "$B_PID" 2>/dev/null || true
done
col() { awk -v c="$1" '{print $c}' "$T/res" | median; }
echo "median: writes one server $(col 1)/s (p99 $(col 2) ms), two servers $(col 3)/s (p99 $(col 4) ms), ratio $(awk -v a="$(col 3)" -v b="$(col 1)" 'BEGIN{printf "%.2f", a/b}') | reads one $(col 5)/s (p99 $(col 6) ms), two $(col 7)/s (p99 $(col 8) ms), ratio $(awk -v a="$(col 7)" -v b="$(col 5)" 'BEGIN{printf "%.2f", a/b}')"
