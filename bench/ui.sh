#!/usr/bin/env bash
# The dashboard with 1,000 environments and 10,000 instances, in Debian's chromium:
# time to a rendered overview, and time for a change to show on an open page.
#   bench/ui.sh        ENVS=1000 PER_ENV=10 REPS=5 CHANGES=20
source "$(dirname "$0")/lib.sh"
echo "# machine: $(machine_line)"
cd "$ROOT/ui" && DROVER_BIN="$DROVER_BIN" node "$ROOT/bench/ui_bench.mjs"
