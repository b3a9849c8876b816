#!/usr/bin/env bash
# Memory of a streamed 1 GiB request body and a streamed 1 GiB response: the harness server
# (tests/stream_harness.cc: drover's transport and pipeline with streaming routes) must stay
# flat — its peak RSS may grow by at most LIMIT_MIB over its idle RSS — while curl sends and
# receives the bytes over loopback. Exits 1 when it does not.
#   bench/stream.sh          SIZE_MIB=1024 LIMIT_MIB=64 by default
source "$(dirname "$0")/lib.sh"
SIZE_MIB="${SIZE_MIB:-1024}" LIMIT_MIB="${LIMIT_MIB:-64}"
HARNESS="${HARNESS:-$ROOT/build/tests/stream_harness}"
[ -x "$HARNESS" ] || { echo "build the harness first: cmake --build build --target stream_harness" >&2; exit 2; }
"$HARNESS" "$T" "$T/addr" >"$T/harness.log" 2>&1 &
PIDS+=($!)
HPID=$!
for _ in $(seq 1 100); do [ -s "$T/addr" ] && break; sleep 0.1; done
ADDR="http://$(cat "$T/addr")"
kib() { awk -v k="$1" '$1==k":" {print $2}' "/proc/$HPID/status"; }
idle="$(kib VmRSS)"
bytes=$((SIZE_MIB * 1024 * 1024))

echo "# machine: $(machine_line)"
start=$(date +%s.%N)
up="$(head -c "$bytes" /dev/zero | curl -fsS --max-time 600 -X POST -T - \
  "$ADDR/count")"
mid=$(date +%s.%N)
down="$(curl -fsS --max-time 600 "$ADDR/download?bytes=$bytes" | wc -c)"
end=$(date +%s.%N)
peak="$(kib VmHWM)"
grow=$(( (peak - idle) / 1024 ))
echo "upload:   $up in $(echo "$mid - $start" | bc) s"
echo "download: $down bytes in $(echo "$end - $mid" | bc) s"
echo "harness RSS: idle $((idle / 1024)) MiB, peak $((peak / 1024)) MiB (+$grow MiB for ${SIZE_MIB} MiB each way; limit +$LIMIT_MIB MiB)"
[ "$up" = "{\"bytes\":$bytes,\"sum\":0}" ] || { echo "FAIL: the upload was not counted right" >&2; exit 1; }
[ "$down" = "$bytes" ] || { echo "FAIL: the download was cut short" >&2; exit 1; }
[ "$grow" -le "$LIMIT_MIB" ] || { echo "FAIL: memory grew with the body" >&2; exit 1; }
echo "ok: memory stays flat"
