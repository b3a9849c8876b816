#!/usr/bin/env bash
# Time to repair: kill -9 an instance's agent (local provider, heartbeat_interval 1s) and time
# until its replacement is running (joined and heartbeating), REPAIRS times, each on an instance
# that never failed before (a repeated failure of the same slot backs off: 1 s, 2 s, 4 s ...).
#   bench/fleet.sh           REPAIRS=20
REPAIRS="${REPAIRS:-20}"
source "$(dirname "$0")/lib.sh"

git init -q --bare -b main "$T/repo.git"
git init -q -b main "$T/src"
(cd "$T/src" && git config user.email b@b && git config user.name bench &&
  printf '#!/bin/sh\necho hello\n' >run.sh && chmod +x run.sh && git add . &&
  git commit -qm one && git push -q "$T/repo.git" main)

start_drover fleet --rate-limit 0 --access-log false --local-instances stop
curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d "{\"provider\":\"local\",\"capacity\":$REPAIRS,\"agent\":{\"repository\":\"file://$T/repo.git\",\"main_run\":\"./run.sh\",\"interval\":3600},\"health\":{\"heartbeat_interval\":\"1s\",\"max_restarts\":1000}}" \
  "$DROVER_ADDR/v1/environments/fleet" >/dev/null

echo "# machine: $(machine_line)"
python3 - "$DROVER_ADDR" "$TOKEN" "$REPAIRS" <<'PY'
import json, os, signal, statistics, sys, time, urllib.request
addr, token, repairs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def running():
    req = urllib.request.Request(f"{addr}/v1/environments/fleet/instances",
                                 headers={"Authorization": f"Bearer {token}"})
    items = json.load(urllib.request.urlopen(req))["items"]
    return {i["id"]: i for i in items if i["state"] == "running"}
def wait(cond, limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        r = running()
        if cond(r): return r
        time.sleep(0.01)
    sys.exit("error: timed out")
wait(lambda r: len(r) == repairs, 120)
times = []
for n in range(repairs):
    r = running()
    victim = min(r, key=lambda i: (r[i]["restarts"], i))  # a first failure
    pid = int(r[victim]["provider_id"].split(":")[1])
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait(lambda r: len(r) == repairs and victim not in r)
    times.append((time.monotonic() - t0) * 1000)
    print(f"repair {n + 1}: {times[-1]:.0f} ms")
print(f"time to repair over {repairs}: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms "
      "(goal: < 3 x heartbeat interval + agent start = 3 s + start)")
PY
