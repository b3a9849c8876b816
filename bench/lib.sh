# Shared helpers for bench/*.sh: free ports, a private drover server, wrk parsing, medians.
# Every server started here is stopped on exit; every load loop is bounded by wrk's -d.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DROVER_BIN="${DROVER_BIN:-$ROOT/build/drover}"
REPS="${REPS:-3}"
DURATION="${DURATION:-10}"
T="$(mktemp -d)"  # removed by cleanup() on exit
PIDS=()
PGDATA_DIRS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for d in "${PGDATA_DIRS[@]}"; do as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
# PostgreSQL's programs refuse to run as root: run them as the postgres user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# start_pg NAME : a private PostgreSQL cluster (default settings: fsync and synchronous_commit
# on) on a free loopback port; sets PG_PORT and PG_URL (database "bench").
start_pg() {
  local dir="$T/$1"
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chmod o+x "$T" && chown postgres "$dir"
  PG_PORT="$(free_port)"
  as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --locale=C.UTF-8 -E UTF8 >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  PGDATA_DIRS+=("$dir/data")
  "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt -c "CREATE DATABASE bench" postgres
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench"
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

machine_line() {
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ)"
}

# start_drover NAME ARGS... : starts a server with its own data dir; sets DROVER_ADDR, TOKEN.
start_drover() {
  local name="$1"; shift
  local port; port="$(free_port)"
  mkdir -p "$T/$name"
  TOKEN="${TOKEN:-bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}"  # one per script: servers sharing a database share it
  DROVER_BOOTSTRAP_TOKEN="$TOKEN" "$DROVER_BIN" server --listen "127.0.0.1:$port" \
    --data-dir "$T/$name" "$@" >"$T/$name/server.log" 2>&1 &
  PIDS+=($!)
  DROVER_PID=$!
  DROVER_ADDR="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -fs "$DROVER_ADDR/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  tail -n 20 "$T/$name/server.log" >&2; echo "drover did not start" >&2; exit 2
}
# start_drover_on BACKEND NAME : a server for load tests (no rate limit, no access log) on
# sqlite (its data dir) or postgres (a private cluster started here).
start_drover_on() {
  local backend="$1" name="$2" args=(--rate-limit 0 --access-log false)
  if [ "$backend" = postgres ]; then
    start_pg "pg-$name"
    args+=(--db "$PG_URL")
  fi
  start_drover "$name" "${args[@]}" ${DROVER_ARGS:-}
}
stop_drover() { kill "$DROVER_PID" 2>/dev/null || true; wait "$DROVER_PID" 2>/dev/null || true; }

# wrk_run ARGS... : prints "rps p50_ms p99_ms"
wrk_run() {
  local out; out="$(wrk --latency "$@")"
  local rps p50 p99
  rps="$(echo "$out" | awk '/Requests\/sec/{print $2}')"
  p50="$(echo "$out" | awk '/ 50%/{print $2}')"
  p99="$(echo "$out" | awk '/ 99%/{print $2}')"
  if echo "$out" | grep -q "Non-2xx"; then echo "$out" | grep "Non-2xx" >&2; fi
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { # wrk prints 1.23ms, 456.00us, 1.20s
  case "$1" in
    *us) awk -v v="${1%us}" 'BEGIN{printf "%.3f", v/1000}' ;;
    *ms) awk -v v="${1%ms}" 'BEGIN{printf "%.3f", v}' ;;
    *s) awk -v v="${1%s}" 'BEGIN{printf "%.3f", v*1000}' ;;
    *) echo "$1" ;;
  esac
}
# CPU seconds (user+system) used so far by process $1.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14+$15)/hz}' "/proc/$1/stat"; }
# Busy and total CPU ticks of the whole machine so far: "busy total".
machine_ticks() { awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}' /proc/stat; }
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# start_nginx : nginx `return 200 "ok"` with one worker on a free port; sets NGPORT.
start_nginx() {
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
}

# compare_with_nginx URL TOKEN : wrk -t2 -c64 against nginx and drover's URL (with the bearer
# TOKEN), REPS times, alternating which goes first; prints each rep and the medians.
compare_with_nginx() {
  local url="$1" token="$2"
  echo "# wrk -t2 -c64 -d${DURATION}s, $REPS reps; nginx worker_processes 1"
  wrk -t2 -c64 -d2s "http://127.0.0.1:$NGPORT/" >/dev/null
  wrk -t2 -c64 -d2s -H "Authorization: Bearer $token" "$url" >/dev/null
  : >"$T/ng" ; : >"$T/dr" ; : >"$T/ratio"
  local r ng dr ratio
  # The machine is shared: alternate which server goes first and compare within each rep.
  for r in $(seq 1 "$REPS"); do
    if [ $((r % 2)) = 1 ]; then
      ng="$(wrk_run -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$NGPORT/")"
      dr="$(wrk_run -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $token" "$url")"
    else
      dr="$(wrk_run -t2 -c64 -d"${DURATION}s" -H "Authorization: Bearer $token" "$url")"
      ng="$(wrk_run -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$NGPORT/")"
    fi
    echo "$ng" >>"$T/ng"; echo "$dr" >>"$T/dr"
    ratio="$(awk -v a="${dr%% *}" -v b="${ng%% *}" 'BEGIN{printf "%.3f", a/b}')"
    echo "$ratio" >>"$T/ratio"
    echo "rep $r: nginx $ng | drover $dr | ratio $ratio   (req/s p50ms p99ms)"
  done
  local ng_rps dr_rps ng_p99 dr_p99
  ng_rps="$(awk '{print $1}' "$T/ng" | median)"; dr_rps="$(awk '{print $1}' "$T/dr" | median)"
  ng_p99="$(awk '{print $3}' "$T/ng" | median)"; dr_p99="$(awk '{print $3}' "$T/dr" | median)"
  ratio="$(median <"$T/ratio")"
  echo "median: nginx ${ng_rps} req/s p99 ${ng_p99} ms | drover ${dr_rps} req/s p99 ${dr_p99} ms | median per-rep ratio ${ratio} (goal >= 0.80)"
}
