#!/usr/bin/env bash
# The agent's footprint:
# 1. an idle `drover agent` daemon (joined, first run done, waiting in its blocking query):
#    peak RSS and CPU over IDLE seconds;
# 2. a `--once` run whose commit is unchanged (fetch, compare, report "skipped"): wall time with
#    hyperfine, beside `git fetch` of the same checkout alone, and the agent process's peak RSS.
#   bench/agent.sh           IDLE=30 RUNS=20
IDLE="${IDLE:-30}" RUNS="${RUNS:-20}"
source "$(dirname "$0")/lib.sh"
command -v hyperfine >/dev/null || { echo "needs hyperfine (make deps)" >&2; exit 2; }

# A real repository to fetch: a bare repo with one commit.
git init -q --bare -b main "$T/repo.git"
git init -q -b main "$T/src"
(cd "$T/src" && git config user.email b@b && git config user.name bench &&
  printf '#!/bin/sh\necho hello\n' >run.sh && chmod +x run.sh && git add . &&
  git commit -qm one && git push -q "$T/repo.git" main)

start_drover agentbench --rate-limit 0 --access-log false
curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d "{\"provider\":\"static\",\"agent\":{\"repository\":\"file://$T/repo.git\",\"main_run\":\"./run.sh\",\"interval\":3600}}" \
  "$DROVER_ADDR/v1/environments/bench" >/dev/null
JT="$(curl -fs -H "Authorization: Bearer $TOKEN" "$DROVER_ADDR/v1/environments/bench" |
  python3 -c 'import json,sys;print(json.load(sys.stdin)["status"]["join_token"])')"

echo "# machine: $(machine_line)"
"$DROVER_BIN" agent --server "$DROVER_ADDR" --join-token "$JT" -e bench --work-dir "$T/daemon" \
  >"$T/daemon.log" 2>&1 &
AGENT=$!
PIDS+=("$AGENT")
for _ in $(seq 1 100); do grep -q "run .* ok" "$T/daemon.log" && break; sleep 0.1; done
sleep 1
cpu0="$(cpu_seconds "$AGENT")"
sleep "$IDLE"
cpu1="$(cpu_seconds "$AGENT")"
rss="$(awk '/VmRSS/{print $2}' "/proc/$AGENT/status")"
hwm="$(awk '/VmHWM/{print $2}' "/proc/$AGENT/status")"
pss="$(awk '/^Pss:/{print $2}' "/proc/$AGENT/smaps_rollup")"
echo "idle daemon: RSS ${rss} kB (peak ${hwm} kB, PSS ${pss} kB), CPU $(awk -v a="$cpu0" -v b="$cpu1" -v s="$IDLE" 'BEGIN{printf "%.1f ms over %d s (%.3f%%)", (b-a)*1000, s, (b-a)/s*100}')  (goal: RSS < 10 MB)"
kill "$AGENT"; wait "$AGENT" 2>/dev/null || true

# --once on a work dir whose last run succeeded on the same commit: a no-op run.
ONCE=("$DROVER_BIN" agent --once --server "$DROVER_ADDR" --join-token "$JT" -e bench --work-dir "$T/once")
"${ONCE[@]}" >/dev/null 2>&1
CHECKOUT="$(ls -d "$T"/once/repos/*/)"
hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$T/hf.json" \
  -n "drover agent --once (unchanged commit)" "${ONCE[*]}" \
  -n "git fetch alone" "git -C $CHECKOUT fetch --quiet --force --tags origin main" >"$T/hf.txt" 2>&1 || cat "$T/hf.txt"
python3 - "$T/hf.json" <<'PY'
import json, sys, statistics
r = json.load(open(sys.argv[1]))["results"]
once, fetch = (statistics.median(x["times"]) * 1000 for x in r)
cpu = (r[0]["user"] + r[0]["system"]) * 1000
print(f"--once no-op run: median {once:.1f} ms; git fetch alone: median {fetch:.1f} ms; "
      f"the agent's own part: {once - fetch:.1f} ms (goal: < 100 ms plus the fetch); "
      f"CPU {cpu:.1f} ms per run (mean user+system, git processes included)")
PY
python3 - "${ONCE[@]}" <<'PY'
# The agent's own peak RSS (VmHWM), read every millisecond until it exits (git's are its own).
import subprocess, sys, time
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = 0
while p.poll() is None:
    try:
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.001)
print(f"--once no-op run: the agent's peak RSS {peak} kB (goal < 10 MB)")
PY
