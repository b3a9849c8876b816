#!/usr/bin/env bash
# Authenticated GET /v1/variables/{key} through drover (one I/O thread, access log, metrics and
# the SQLite read all on) beside nginx `return 200` (one worker), same wrk, same run.
#   bench/http.sh            REPS=5 DURATION=8 by default
REPS="${REPS:-5}" DURATION="${DURATION:-8}"
source "$(dirname "$0")/lib.sh"
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (make deps)" >&2; exit 2; }

NGPORT="$(free_port)"
mkdir -p "$T/nginx"
cat >"$T/nginx/nginx.conf" <<NG
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $T/nginx/body; proxy_temp_path $T/nginx/proxy; fastcgi_temp_path $T/nginx/fcgi;
  uwsgi_temp_path $T/nginx/uwsgi; scgi_temp_path $T/nginx/scgi;
  server { listen 127.0.0.1:$NGPORT; location / { return 200 "ok"; } }
}
NG
nginx -c "$T/nginx/nginx.conf" -p "$T/nginx"
for _ in $(seq 1 50); do [ -s "$T/nginx/nginx.pid" ] && break; sleep 0.1; done
PIDS+=("$(cat "$T/nginx/nginx.pid")")

start_drover http --threads 1 --log-format json --rate-limit 0
curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"value":"https://github.com/example/sim.git"}' "$DROVER_ADDR/v1/variables/cc-a-repository" >/dev/null

echo "# machine: $(machine_line)"
echo "# wrk -t2 -c64 -d${DURATION}s, $REPS reps; nginx worker_processes 1; drover --threads 1"
wrk -t2 -c64 -d2s "http://127.0.0.1:$NGPORT/" >/dev/null
wrk -t2 -c64 -d2s -H "Authorization: Bearer $TOKEN" "$DROVER_ADDR/v1/variables/cc-a-repository" >/dev/null
: >"$T/ng" ; : >"$T/dr" ; : >"$T/ratio"
# The machine is shared: alternate which server goes first and compare within each rep.
for r in $(seq 1 "$REPS"); do
  if [ $((r % 2)) = 1 ]; then
    ng="$(wrk_run -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$NGPORT/")"
    dr="$(wrk_run -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$DROVER_ADDR/v1/variables/cc-a-repository")"
  else
    dr="$(wrk_run -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $TOKEN" "$DROVER_ADDR/v1/variables/cc-a-repository")"
    ng="$(wrk_run -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$NGPORT/")"
  fi
  echo "$ng" >>"$T/ng"; echo "$dr" >>"$T/dr"
  ratio="$(awk -v a="${dr%% *}" -v b="${ng%% *}" 'BEGIN{printf "%.3f", a/b}')"
  echo "$ratio" >>"$T/ratio"
  echo "rep $r: nginx $ng | drover $dr | ratio $ratio   (req/s p50ms p99ms)"
done
ng_rps="$(awk '{print $1}' "$T/ng" | median)"; dr_rps="$(awk '{print $1}' "$T/dr" | median)"
ng_p99="$(awk '{print $3}' "$T/ng" | median)"; dr_p99="$(awk '{print $3}' "$T/dr" | median)"
ratio="$(median <"$T/ratio")"
lines="$(grep -c '"msg":"request"' "$T/http/server.log" || true)"
echo "median: nginx ${ng_rps} req/s p99 ${ng_p99} ms | drover ${dr_rps} req/s p99 ${dr_p99} ms | median per-rep ratio ${ratio} (goal >= 0.80)"
echo "access-log lines written by drover: $lines"
