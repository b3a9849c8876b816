#!/usr/bin/env bash
# The gateway beside nginx, same run, same upstream.
#   proxy:   GET /svc/b/ through drover (--threads 1, auth: none, keep-alive pool) and through
#            nginx proxy_pass (worker_processes 1, upstream keepalive 64) to one upstream nginx
#            `return 200` (its own worker); wrk -t2 -c64, REPS reps alternating, medians.
#   latency: the same paced at half of nginx's proxy rate (wrk's delay()), drover's proxy, nginx's proxy and
#            the upstream directly: the p99 each adds; then drover with its default threads.
#   wake:    an environment (local provider, a python3 service) closed by its idle timeout, then
#            one request: time to the answer's first byte, 10 times, median and max.
#   bench/gateway.sh [proxy|wake|all]        REPS=3 DURATION=8 WAKES=10
MODE="${1:-all}"
REPS="${REPS:-3}" DURATION="${DURATION:-8}" WAKES="${WAKES:-10}"
source "$(dirname "$0")/lib.sh"

echo "# machine: $(machine_line)"

# start_nginx_proxy UPSTREAM_PORT : nginx proxy_pass with a keep-alive upstream pool; sets NPPORT.
start_nginx_proxy() {
  NPPORT="$(free_port)"
  mkdir -p "$T/nproxy"
  cat >"$T/nproxy/nginx.conf" <<NG
worker_processes 1;
pid $T/nproxy/nginx.pid;
error_log $T/nproxy/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $T/nproxy/body; proxy_temp_path $T/nproxy/proxy; fastcgi_temp_path $T/nproxy/fcgi;
  uwsgi_temp_path $T/nproxy/uwsgi; scgi_temp_path $T/nproxy/scgi;
  upstream backend { server 127.0.0.1:$1; keepalive 64; }
  server {
    listen 127.0.0.1:$NPPORT;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NG
  nginx -c "$T/nproxy/nginx.conf" -p "$T/nproxy"
  for _ in $(seq 1 50); do [ -s "$T/nproxy/nginx.pid" ] && break; sleep 0.1; done
  PIDS+=("$(cat "$T/nproxy/nginx.pid")")
}

# paced URL RATE : wrk -c64 with a per-connection delay that makes about RATE req/s; prints
# "rps p50_ms p99_ms".
paced() {
  local delay_ms
  delay_ms="$(awk -v r="$2" 'BEGIN{d=int(64*1000/r+0.5); if (d<1) d=1; print d}')"
  cat >"$T/pace.lua" <<LUA
function delay() return $delay_ms end
LUA
  wrk_run -t2 -c64 -d"${DURATION}s" -s "$T/pace.lua" "$1"
}

bench_proxy() {
  start_nginx                     # the upstream: return 200 "ok"
  start_nginx_proxy "$NGPORT"
  start_drover gw --threads 1 --access-log false --rate-limit 0
  curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"upstreams\":[\"http://127.0.0.1:$NGPORT\"],\"auth\":\"none\"}" \
    "$DROVER_ADDR/v1/routes/b" >/dev/null
  local dr_url="$DROVER_ADDR/svc/b/" ng_url="http://127.0.0.1:$NPPORT/"
  curl -fs "$dr_url" >/dev/null && curl -fs "$ng_url" >/dev/null
  echo "# proxy: wrk -t2 -c64 -d${DURATION}s, $REPS reps; upstream nginx return 200 (1 worker)"
  wrk -t2 -c64 -d2s "$ng_url" >/dev/null; wrk -t2 -c64 -d2s "$dr_url" >/dev/null
  : >"$T/ng"; : >"$T/dr"; : >"$T/ratio"
  local r ng dr ratio
  for r in $(seq 1 "$REPS"); do
    if [ $((r % 2)) = 1 ]; then
      ng="$(wrk_run -t2 -c64 -d"${DURATION}s" "$ng_url")"; dr="$(wrk_run -t2 -c64 -d"${DURATION}s" "$dr_url")"
    else
      dr="$(wrk_run -t2 -c64 -d"${DURATION}s" "$dr_url")"; ng="$(wrk_run -t2 -c64 -d"${DURATION}s" "$ng_url")"
    fi
    echo "$ng" >>"$T/ng"; echo "$dr" >>"$T/dr"
    ratio="$(awk -v a="${dr%% *}" -v b="${ng%% *}" 'BEGIN{printf "%.3f", a/b}')"
    echo "$ratio" >>"$T/ratio"
    echo "rep $r: nginx proxy $ng | drover proxy $dr | ratio $ratio   (req/s p50ms p99ms)"
  done
  local ng_rps dr_rps
  ng_rps="$(awk '{print $1}' "$T/ng" | median)"; dr_rps="$(awk '{print $1}' "$T/dr" | median)"
  echo "median: nginx proxy ${ng_rps} req/s | drover proxy ${dr_rps} req/s | median per-rep ratio $(median <"$T/ratio") (goal >= 0.80)"

  local half direct via
  half="$(awk -v a="$ng_rps" 'BEGIN{printf "%d", a/2}')"
  echo "# latency at about half of nginx's proxy rate ($half req/s), $REPS reps"
  : >"$T/added"; : >"$T/added_ng"
  local ngvia
  for r in $(seq 1 "$REPS"); do
    direct="$(paced "http://127.0.0.1:$NGPORT/" "$half")"
    via="$(paced "$dr_url" "$half")"
    ngvia="$(paced "$ng_url" "$half")"
    echo "rep $r: upstream direct $direct | through drover $via | through nginx $ngvia   (req/s p50ms p99ms)"
    awk -v a="$(echo "$via" | awk '{print $3}')" -v b="$(echo "$direct" | awk '{print $3}')" \
      'BEGIN{printf "%.3f\n", a-b}' >>"$T/added"
    awk -v a="$(echo "$ngvia" | awk '{print $3}')" -v b="$(echo "$direct" | awk '{print $3}')" \
      'BEGIN{printf "%.3f\n", a-b}' >>"$T/added_ng"
  done
  echo "median p99 added: drover $(median <"$T/added") ms, nginx $(median <"$T/added_ng") ms (goal for drover < 1 ms)"
  stop_drover
  # The same with drover's default of one I/O thread per core (as a user runs it).
  start_drover gw2 --access-log false --rate-limit 0
  curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"upstreams\":[\"http://127.0.0.1:$NGPORT\"],\"auth\":\"none\"}" \
    "$DROVER_ADDR/v1/routes/b" >/dev/null
  dr_url="$DROVER_ADDR/svc/b/"
  : >"$T/added2"
  for r in $(seq 1 "$REPS"); do
    direct="$(paced "http://127.0.0.1:$NGPORT/" "$half")"
    via="$(paced "$dr_url" "$half")"
    echo "rep $r: upstream direct $direct | through drover (default threads) $via"
    awk -v a="$(echo "$via" | awk '{print $3}')" -v b="$(echo "$direct" | awk '{print $3}')" \
      'BEGIN{printf "%.3f\n", a-b}' >>"$T/added2"
  done
  echo "median p99 added by drover with its default threads: $(median <"$T/added2") ms"
  stop_drover
}

bench_wake() {
  local repo="$T/repo"
  mkdir -p "$repo" && cp "$ROOT/tests/gateway_upstream.py" "$repo/"
  printf '#!/bin/sh\nexec python3 ./gateway_upstream.py --name "i-$PORT"\n' >"$repo/run.sh"
  chmod +x "$repo/run.sh"
  (cd "$repo" && git init -q -b main && git add -A &&
    git -c user.email=b@b -c user.name=bench commit -qm service)
  start_drover wake --providers static,exec,local --local-instances stop --rate-limit 0 \
    --access-log false
  local auth=(-H "Authorization: Bearer $TOKEN")
  curl -fs -X PUT "${auth[@]}" -H 'Content-Type: application/json' "$DROVER_ADDR/v1/environments/nb" \
    -d "{\"provider\":\"local\",\"capacity\":1,\"idle_timeout\":\"2s\",\"agent\":{\"repository\":\"file://$repo\",\"main_run\":\"./run.sh\",\"interval\":3600},\"health\":{\"heartbeat_interval\":\"1s\"},\"service\":{\"port\":8080,\"health_path\":\"/healthz\"}}" >/dev/null
  curl -fs "${auth[@]}" "$DROVER_ADDR/env/nb/healthz" >/dev/null
  echo "# wake from zero: idle_timeout 2s, local provider, python3 http.server service; $WAKES wakes"
  : >"$T/wake.ms"
  local i phase t
  for i in $(seq 1 "$WAKES"); do
    for _ in $(seq 1 300); do
      phase="$(curl -fs "${auth[@]}" "$DROVER_ADDR/v1/environments/nb" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["phase"])')"
      [ "$phase" = stopped ] && break
      sleep 0.1
    done
    [ "$phase" = stopped ] || { echo "environment never closed" >&2; exit 1; }
    t="$(curl -fs -o /dev/null -w '%{time_starttransfer}' "${auth[@]}" "$DROVER_ADDR/env/nb/healthz")"
    awk -v s="$t" 'BEGIN{printf "%.1f\n", s*1000}' >>"$T/wake.ms"
    echo "wake $i: $(tail -1 "$T/wake.ms") ms to the first byte"
  done
  echo "wake from zero: median $(median <"$T/wake.ms") ms, max $(sort -g "$T/wake.ms" | tail -1) ms"
  stop_drover
}

case "$MODE" in
  proxy) bench_proxy ;;
  wake) bench_wake ;;
  all) bench_proxy; bench_wake ;;
  *) echo "usage: bench/gateway.sh [proxy|wake|all]" >&2; exit 2 ;;
esac
